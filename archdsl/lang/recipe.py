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
    label_smoothing 0.1 · droppath 0.1 · ema 0.9999 · clip_grad 1.0 · accumulate 2
    checkpoint_every 500 (steps) · precision bf16 · channels_last
"""
from __future__ import annotations

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
    # timm's `rand-m9-mstd0.5`
    randaugment: tuple[float, float] | None = None
    mixup: float = 0.0  # Beta(alpha, alpha); 0 disables
    cutmix: float = 0.0
    erasing: float = 0.0  # probability
    label_smoothing: float = 0.0
    droppath: float = 0.0  # stochastic-depth rate of the last block
    ema: float | None = None
    clip_grad: float | None = None
    accumulate: int = 1
    checkpoint_every: int = 0  # steps; 0 = once per epoch only
    precision: Literal["fp32", "bf16"] = "fp32"
    channels_last: bool = False

    # Every number has a range (and pydantic rejects nan and inf: allow_inf_nan=False).
    @field_validator("epochs", "batch", "accumulate", "checkpoint_every", "lr", "wd", "momentum",
                     "warmup", "min_lr", "gamma", "every", "mixup", "cutmix", "erasing", "label_smoothing",
                     "droppath", "ema", "clip_grad")
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
    def _magnitude(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not (0.0 < v[0] <= 10.0 and 0.0 <= v[1] <= 10.0):
            raise ValueError("RandAugment takes a magnitude in (0, 10] and a noise std in [0, 10]")
        return v


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
}


FIELDS = tuple(TrainRecipe.model_fields)
EXAMPLES = {"epochs": "5", "batch": "64", "accumulate": "2", "checkpoint_every": "500", "lr": "1e-3",
            "wd": "0.05", "momentum": "0.9", "betas": "0.9,0.999", "warmup": "5", "min_lr": "1e-6",
            "gamma": "0.1", "milestones": "30,60", "every": "1", "mixup": "0.8", "cutmix": "1.0", "erasing": "0.25",
            "label_smoothing": "0.1", "droppath": "0.1", "ema": "0.9999", "clip_grad": "1.0",
            "randaugment": "9,0.5", "optimizer": "adamw", "schedule": "cosine", "precision": "bf16"}

# Lines whose first word picks a value and whose later words are `name value` options.
_OPTION_LINES = {
    "optimizer": ("optimizer", {"lr": 1, "wd": 1, "momentum": 1, "betas": 2, "nesterov": 0}),
    "schedule": ("schedule", {"warmup": 1, "min_lr": 1, "gamma": 1, "every": 1}),
}
_AUGMENTS = {"rrc": 0, "flip": 0, "randaugment": 2, "mixup": 1, "cutmix": 1, "erasing": 1}
_FLAGS = {"nesterov", "rrc", "flip", "channels_last"}


def _value(field: str, words: tuple[Word, ...]):
    """Words of one field, as the type pydantic will validate."""
    texts = [w.text for w in words]
    if field in _FLAGS and not texts:
        return True
    if field in ("betas", "randaugment", "milestones"):
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
                put(name, tuple(rest[i + 1:i + 1 + n]), rest[i])
                i += 1 + n
        elif key == "augment":
            for group in s.groups:
                name = group[0].text
                if name not in _AUGMENTS:
                    errors.add(RecipeError(f"unknown augmentation `{name}`", group[0].span,
                                           hint="augmentations: " + ", ".join(_AUGMENTS), code="E602"))
                    continue
                put(name, group[1:], group[0])
        elif key in FIELDS:
            put(key, tuple(words), s.key)
        else:
            from .suggest import did_you_mean
            errors.add(RecipeError(f"unknown training setting `{key}`", s.key.span,
                                   hint=did_you_mean(key, list(FIELDS) + ["augment"]) or None,
                                   code="E602"))
    errors.raise_if_any()
    return values, where


def build_recipe(values: dict[str, object], where: dict[str, Word] | None = None) -> TrainRecipe:
    """Validate flat fields; a bad value is reported at the word that set it."""
    try:
        return TrainRecipe(**values)
    except ValidationError as e:
        errors = ErrorCollector()
        for err in e.errors():
            field = str(err["loc"][0]) if err["loc"] else "train"
            anchor = (where or {}).get(field)
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
