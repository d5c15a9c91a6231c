"""The `train { }` section as a flat, validated recipe.

Every line of the section sets one or more flat fields, so any recipe value can be
overridden as `--set train.FIELD=VALUE` (or `train_FIELD=` in the API):

    epochs 300                                  -> epochs
    batch 4096                                  -> batch
    optimizer adamw lr 4e-3 wd 0.05 [betas 0.9 0.999] [momentum 0.9] [nesterov]
                                                -> optimizer, lr, wd, betas, momentum, nesterov
    schedule cosine warmup 20 [min_lr 1e-6]     -> schedule, warmup, min_lr
    schedule step 30 60 80 [gamma 0.1]          -> schedule, milestones, gamma
    schedule step every 1 gamma 0.98            -> schedule, every, gamma (a step every N epochs:
                                                   torchvision's MobileNetV2 recipe)
    augment rrc, flip, randaugment 9 0.5, mixup 0.8, cutmix 1.0, erasing 0.25
                                                -> rrc, flip, randaugment, mixup, cutmix, erasing
    augment randaugment rand-m9-mstd0.5-inc1    -> randaugment as timm's config string
    augment erasing 0.25 pixel, color_jitter 0.4 -> erasing, erasing_mode (pixel|const|rand), color_jitter
    normalize imagenet | measured | auto | mean 0.5 0.5 0.5 std 0.25 0.25 0.25
                                                -> normalize, mean, std
    label_smoothing 0.1 · droppath 0.1 · ema 0.9999 · clip_grad 1.0 · accumulate 2
    checkpoint_every 500 (steps) · precision bf16 · channels_last
    workers 4 · crop_pct 0.875 · interpolation bicubic · repeats 3
    log_every 50 (steps between progress lines off a terminal) · track wandb mlflow
    layer_decay 0.7 [group 3]                   -> layer_decay, layer_group
    head_init_scale 0.001                       -> head_init_scale

Fine-tuning (the official ConvNeXt's --layer_decay and --head_init_scale): `layer_decay D`
scales each layer's learning rate by D ** (L + 1 - layer): the stem is layer 0, each stage's
blocks form layers of `group` consecutive blocks (3, as the official; `group 1`: per block,
as BEiT/ViT), a downsample joins its stage's first layer, the head is layer L + 1 at x1
(ConvNeXt-S/B/L/XL: 14 layers exactly as the official; training/layer_decay.py). min_lr and
warm-up scale with each layer; weight decay does not. `head_init_scale S` multiplies the head's
last layer's initial weight and bias by S; `--init-from` weights that fit the head replace it,
so S acts only on a fresh head (another class count), as the official fine-tuning loads.

Normalization: `imagenet` is timm's IMAGENET_DEFAULT_MEAN/STD (what the ConvNeXt, DeiT and
Swin code and every timm/torchvision/official weight expect); `measured` is the per-channel
mean/std of the training images; `auto` (the default) is `imagenet` for RGB input and
`measured` for grey input (ImageNet has no grey statistics, and grey sets such as digits sit
far from a photograph's mean); `mean ... std ...` states them.
`repeats N` is DeiT's repeated augmentation (its RASampler: each image N times per epoch,
differently augmented, on different processes). `workers`: DataLoader worker processes
(`auto`/unset: min(4, CPUs)). `crop_pct`: evaluation resizes the shorter side to
int(size / crop_pct) and centre-crops (ConvNeXt's rule: no crop from 384 up).
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from .ast import Setting, Word
from .errors import ErrorCollector, RecipeError


class TrainRecipe(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    epochs: int = 1
    batch: int = 64
    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: float = 1e-3
    wd: float = 0.0
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    nesterov: bool = False
    schedule: Literal["constant", "step", "cosine"] = "constant"
    warmup: float = 0.0  # epochs of linear warm-up
    min_lr: float = 0.0
    milestones: tuple[int, ...] = ()
    every: int = 0  # a step schedule's step every N epochs; 0: at the milestones
    gamma: float = 0.1
    rrc: bool = False
    flip: bool = False
    # (magnitude M of 10, noise std of M), two ops per image: the paper's RandAugment (9, 0.5),
    # timm's `rand-m9-mstd0.5-inc1`; or timm's config string itself
    randaugment: tuple[float, float] | str | None = None
    color_jitter: float | None = None
    mixup: float = 0.0  # Beta(alpha, alpha); 0 disables
    cutmix: float = 0.0
    erasing: float = 0.0  # probability
    erasing_mode: Literal["pixel", "const", "rand"] = "pixel"  # timm's remode; the papers' `pixel`
    normalize: Literal["auto", "imagenet", "measured", "explicit"] = "auto"
    mean: tuple[float, ...] | None = None  # with std: normalize explicit
    std: tuple[float, ...] | None = None
    workers: int | None = None  # DataLoader worker processes; None: min(4, CPUs)
    crop_pct: float = 0.875  # evaluation: resize to size / crop_pct, centre-crop
    interpolation: Literal["bilinear", "bicubic"] = "bicubic"
    repeats: int = 1  # DeiT's repeated augmentation (RASampler); 1: off
    log_every: int = 50  # optimizer steps between progress lines when stderr is not a terminal
    track: tuple[Literal["wandb", "mlflow"], ...] = ()  # trackers beside TensorBoard
    label_smoothing: float = 0.0
    droppath: float = 0.0  # stochastic-depth rate of the last block
    ema: float | None = None
    clip_grad: float | None = None
    accumulate: int = 1
    checkpoint_every: int = 0  # steps; 0 = once per epoch only
    precision: Literal["fp32", "bf16"] = "fp32"
    channels_last: bool = False
    layer_decay: float = 1.0  # lr x D ** (L + 1 - layer) per layer; 1: off
    layer_group: int = 3  # blocks per layer of layer_decay (the official ConvNeXt's 3)
    head_init_scale: float = 1.0  # the head's last layer starts at S x its init

    # Every number has a range (and pydantic rejects nan and inf: allow_inf_nan=False).
    @field_validator("epochs", "batch", "accumulate", "checkpoint_every", "lr", "wd", "momentum",
                     "warmup", "min_lr", "gamma", "every", "mixup", "cutmix", "erasing", "label_smoothing",
                     "droppath", "ema", "clip_grad", "color_jitter", "workers", "crop_pct", "repeats", "log_every",
                     "layer_decay", "layer_group", "head_init_scale")
    @classmethod
    def _in_range(cls, v, info):
        if v is None:
            return v
        low, high, low_in, high_in, why = RANGES[info.field_name]
        ok = (low <= v if low_in else low < v) and (v <= high if high_in else v < high)
        if not ok:
            interval = f"{'[' if low_in else '('}{_num(low)}, {_num(high)}{']' if high_in else ')'}"
            raise ValueError(f"must be in {interval}{why}, got {_num(v)}")
        return v

    @field_validator("betas")
    @classmethod
    def _betas(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= b < 1.0 for b in v):
            raise ValueError(f"each beta must be in [0, 1), got {v[0]:g}, {v[1]:g}")
        return v

    @field_validator("milestones")
    @classmethod
    def _milestones(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(m < 1 for m in v) or list(v) != sorted(set(v)):
            raise ValueError("milestones are epochs of at least 1, in increasing order")
        return v

    @model_validator(mode="after")
    def _steps(self) -> "TrainRecipe":
        if self.every and self.milestones:
            raise ValueError("a step schedule steps at its milestones or `every N` epochs, not both")
        if self.every and self.schedule != "step":
            raise ValueError(f"`every` is a step schedule's, not a {self.schedule} schedule's")
        return self

    @field_validator("randaugment")
    @classmethod
    def _magnitude(cls, v):
        if isinstance(v, str):
            if not RANDAUGMENT_CONFIG.fullmatch(v):
                raise ValueError(f"`{v[:60]}` is not a RandAugment config string like timm's "
                                 "`rand-m9-mstd0.5-inc1` (rand, then -mM -nN -mstdS -mmaxX -incI -pP)")
            return v
        if v is not None and not (0.0 < v[0] <= 10.0 and 0.0 <= v[1] <= 10.0):
            raise ValueError("RandAugment takes a magnitude in (0, 10] and a noise std in [0, 10]")
        return v

    @field_validator("workers", mode="before")
    @classmethod
    def _auto_workers(cls, v):
        return None if isinstance(v, str) and v.strip().lower() == "auto" else v

    @field_validator("mean", "std", "track", mode="before")
    @classmethod
    def _one_channel(cls, v):
        return (v,) if isinstance(v, (str, int, float)) else v

    @field_validator("mean", "std")
    @classmethod
    def _stats(cls, v, info):
        if v is None:
            return v
        if not 1 <= len(v) <= 4:
            raise ValueError(f"takes one value per channel (1 or 3), got {len(v)}")
        if info.field_name == "std" and not all(0 < s <= 10 for s in v):
            raise ValueError("each std must be in (0, 10]")
        if info.field_name == "mean" and not all(-10 <= m <= 10 for m in v):
            raise ValueError("each mean must be in [-10, 10]")
        return v

    @model_validator(mode="before")
    @classmethod
    def _explicit(cls, values):
        """`mean`/`std` given (a spec line or --set train.mean=...) make normalization explicit."""
        if isinstance(values, dict) and (values.get("mean") is not None or values.get("std") is not None):
            values = {**values, "normalize": "explicit"}
        return values

    @model_validator(mode="after")
    def _explicit_pair(self):
        explicit = self.normalize == "explicit"
        if explicit and (self.mean is None or self.std is None or len(self.mean) != len(self.std)):
            raise ValueError("give `mean` and `std` together, one value per channel each "
                             "(e.g. `normalize mean 0.5 0.5 0.5 std 0.25 0.25 0.25`)")
        if not explicit and (self.mean is not None or self.std is not None):
            raise ValueError(f"normalize {self.normalize} takes no mean/std")
        return self


def _num(x: float) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


# field: (low, high, low included, high included, why). One table, so the README and the
# errors say the same.
RANGES: dict[str, tuple] = {
    "epochs": (1, 100_000, True, True, ""),
    "batch": (1, 1 << 20, True, True, ""),
    "accumulate": (1, 4096, True, True, ""),
    "checkpoint_every": (0, 1 << 40, True, True, " (steps; 0: once per epoch)"),
    "lr": (0.0, 10.0, True, True, ""),
    "wd": (0.0, 10.0, True, True, ""),
    "momentum": (0.0, 1.0, True, False, ""),
    "warmup": (0.0, 100_000.0, True, True, " (epochs)"),
    "min_lr": (0.0, 10.0, True, True, ""),
    "gamma": (0.0, 1.0, False, True, " (the factor a step schedule multiplies the lr by)"),
    "every": (0, 100_000, True, True, " (epochs between a step schedule's steps; 0: at the milestones)"),
    "mixup": (0.0, 100.0, True, True, " (the Beta(alpha, alpha) alpha; 0 disables)"),
    "cutmix": (0.0, 100.0, True, True, " (the Beta(alpha, alpha) alpha; 0 disables)"),
    "erasing": (0.0, 1.0, True, False, " (a probability)"),
    "label_smoothing": (0.0, 1.0, True, False, ""),
    "droppath": (0.0, 1.0, True, False, " (a probability)"),
    "ema": (0.0, 1.0, False, False, " (the EMA decay)"),
    "clip_grad": (0.0, 1e6, False, True, " (a gradient norm; `none` disables clipping)"),
    "color_jitter": (0.0, 1.0, True, True, " (brightness/contrast/saturation strength)"),
    "workers": (0, 256, True, True, " (DataLoader worker processes; 0 loads in the training process)"),
    "crop_pct": (0.0, 1.0, False, True, " (the evaluation crop's share of the resized image)"),
    "repeats": (1, 16, True, True, " (repeated augmentation: each image this many times an epoch)"),
    "log_every": (1, 1 << 40, True, True, " (optimizer steps between progress lines)"),
    "layer_decay": (0.0, 10.0, False, True, " (the lr factor per layer towards the stem; 1: off)"),
    "layer_group": (1, 4096, True, True, " (blocks per layer of layer_decay)"),
    "head_init_scale": (0.0, 10.0, True, True, " (the factor on the head's initial weight and bias)"),
}
# timm's RandAugment config string (rand_augment_transform): `rand` then dash-separated options.
RANDAUGMENT_CONFIG = re.compile(r"rand(-(m|mstd|mmax|p)\d+(\.\d+)?|-n\d+|-inc[01]|-w\d+)*")


FIELDS = tuple(TrainRecipe.model_fields)
EXAMPLES = {"epochs": "5", "batch": "64", "accumulate": "2", "checkpoint_every": "500", "lr": "1e-3",
            "wd": "0.05", "momentum": "0.9", "betas": "0.9,0.999", "warmup": "5", "min_lr": "1e-6",
            "gamma": "0.1", "milestones": "30,60", "every": "1", "mixup": "0.8", "cutmix": "1.0", "erasing": "0.25",
            "label_smoothing": "0.1", "droppath": "0.1", "ema": "0.9999", "clip_grad": "1.0",
            "randaugment": "9,0.5", "optimizer": "adamw", "schedule": "cosine", "precision": "bf16",
            "color_jitter": "0.4", "erasing_mode": "pixel", "normalize": "imagenet", "mean": "0.5,0.5,0.5",
            "std": "0.25,0.25,0.25", "workers": "4", "crop_pct": "0.875", "interpolation": "bicubic",
            "repeats": "3", "log_every": "50", "track": "mlflow", "layer_decay": "0.7", "layer_group": "1",
            "head_init_scale": "0.001"}

# Lines whose first word picks a value and whose later words are `name value` options.
_OPTION_LINES = {
    "optimizer": ("optimizer", {"lr": 1, "wd": 1, "momentum": 1, "betas": 2, "nesterov": 0}),
    "schedule": ("schedule", {"warmup": 1, "min_lr": 1, "gamma": 1, "every": 1}),
    "layer_decay": ("layer_decay", {"group": 1}),
}
_OPTION_FIELDS = {"group": "layer_group"}  # an option whose field has another name
_AUGMENTS = {"rrc": 0, "flip": 0, "randaugment": 2, "mixup": 1, "cutmix": 1, "erasing": 1,
             "color_jitter": 1}
# Fields written as one `key value` line (flatten writes them back the same way).
LINE_FIELDS = ("label_smoothing", "droppath", "ema", "clip_grad", "accumulate", "checkpoint_every",
               "precision", "channels_last", "workers", "crop_pct", "interpolation", "repeats", "log_every",
               "track", "head_init_scale")
_FLAGS = {"nesterov", "rrc", "flip", "channels_last"}


def _value(field: str, words: tuple[Word, ...]):
    """Words of one field, as the type pydantic will validate."""
    texts = [w.text for w in words]
    if field in _FLAGS and not texts:
        return True
    if field in ("betas", "milestones", "mean", "std", "track") or field == "randaugment" and len(texts) != 1:
        return tuple(texts)
    if len(texts) != 1:
        raise ValueError(f"`{field}` takes one value, got {len(texts)}")
    return texts[0]


def recipe_fields(settings: tuple[Setting, ...]) -> tuple[dict[str, object], dict[str, Word]]:
    """Flat field values from the section's lines, and the word each came from (for errors)."""
    values: dict[str, object] = {}
    where: dict[str, Word] = {}
    errors = ErrorCollector()

    def put(field: str, words: tuple[Word, ...], anchor: Word) -> None:
        try:
            values[field] = _value(field, words)
            where[field] = words[0] if len(words) == 1 else anchor  # a bad value is shown at the value
        except ValueError as e:
            errors.add(RecipeError(str(e), anchor.span, code="E601"))

    for s in settings:
        key = s.key.text
        words = [w for g in s.groups for w in g]
        if key in _OPTION_LINES:
            field, options = _OPTION_LINES[key]
            if not words:
                errors.add(RecipeError(f"`{key}` needs a value", s.key.span, code="E601"))
                continue
            put(field, (words[0],), words[0])
            rest = words[1:]
            if key == "schedule" and words[0].text == "step":
                numbers = []
                while rest and rest[0].text.isdigit():
                    numbers.append(rest.pop(0))
                put("milestones", tuple(numbers), words[0])
            i = 0
            while i < len(rest):
                name = rest[i].text
                if name not in options:
                    errors.add(RecipeError(f"unknown option `{name}` for `{key}`", rest[i].span,
                                           hint="options: " + ", ".join(options), code="E602"))
                    break
                n = options[name]
                put(_OPTION_FIELDS.get(name, name), tuple(rest[i + 1:i + 1 + n]), rest[i])
                i += 1 + n
        elif key == "augment":
            for group in s.groups:
                name = group[0].text
                if name not in _AUGMENTS:
                    errors.add(RecipeError(f"unknown augmentation `{name}`", group[0].span,
                                           hint="augmentations: " + ", ".join(_AUGMENTS), code="E602"))
                    continue
                if name == "erasing" and len(group) == 3:  # `erasing 0.25 pixel`
                    put("erasing_mode", group[2:], group[2])
                    group = group[:2]
                put(name, group[1:], group[0])
        elif key == "normalize":
            _normalize(words, s, put, errors)
        elif key in FIELDS:
            put(key, tuple(words), s.key)
        else:
            from .suggest import did_you_mean
            errors.add(RecipeError(f"unknown training setting `{key}`", s.key.span,
                                   hint=did_you_mean(key, list(FIELDS) + ["augment"]) or None,
                                   code="E602"))
    errors.raise_if_any()
    return values, where


def _normalize(words, s: Setting, put, errors: ErrorCollector) -> None:
    """`normalize imagenet|measured|auto` or `normalize mean M... std S...`."""
    texts = [w.text for w in words]
    if len(texts) == 1 and texts[0] in ("imagenet", "measured", "auto"):
        put("normalize", tuple(words), words[0])
        return
    if texts[:1] == ["mean"] and "std" in texts:
        k = texts.index("std")
        put("mean", tuple(words[1:k]), words[0])
        put("std", tuple(words[k + 1:]), words[k])
        return
    errors.add(RecipeError("`normalize` takes imagenet, measured, auto, or `mean M... std S...`",
                           (words[0] if words else s.key).span,
                           hint="for example `normalize imagenet` or `normalize mean 0.5 std 0.25`",
                           code="E601"))


def build_recipe(values: dict[str, object], where: dict[str, Word] | None = None) -> TrainRecipe:
    """Validate flat fields; a bad value is reported at the word that set it."""
    try:
        return TrainRecipe(**values)
    except ValidationError as e:
        errors = ErrorCollector()
        for err in e.errors():
            field = str(err["loc"][0]) if err["loc"] else "normalize"  # the only model-level rule
            anchor = (where or {}).get(field if err["loc"] else "mean")
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "missing" and len(err["loc"]) > 1:  # pydantic's word for a short tuple
                msg = "too few values"
            example = EXAMPLES.get(field)
            hint = (f"for example `{field} {example.replace(',', ' ')}` in `train {{ }}`, or "
                    f"`--set train.{field}={example}`") if example else None
            errors.add(RecipeError(f"bad value for train `{field}`: {msg}",
                                   anchor.span if anchor else None, hint=hint, code="E603"))
        errors.raise_if_any()
        raise AssertionError("unreachable")
