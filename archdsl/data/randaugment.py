"""RandAugment on PIL images, as timm 0.3.2 runs `rand-m9-mstd0.5-inc1` (the ConvNeXt and
DeiT recipes), with every random draw taken from an explicit `random.Random`.

Per image (timm's `RandAugment.__call__` and `AugmentOp.__call__`):
  1. choose `n` ops from the list, uniformly and with replacement (timm: np.random.choice);
  2. for each chosen op in order: skip it with probability 1 - p (p = 0.5);
     magnitude m' = clip(gauss(m, mstd), 0, 10) (drawn only when mstd > 0);
     the op's argument from m' by its level function below (half of them negated at random);
     the geometric ops draw their resampling filter when it is 'random' (bilinear or bicubic).
The draws happen in that order from `rng`; timm draws the op choice from numpy and the rest
from Python's `random`, which only changes which stream, not any distribution.

Level functions (timm 0.3.2, level = m' in [0, 10]):
  Rotate            +-30 * level/10 degrees           PIL rotate, fill = mean * 255
  ShearX / ShearY   +-0.3 * level/10                  PIL affine, fill = mean * 255
  TranslateXRel/Y   +-0.45 * level/10 * width/height  PIL affine (translate_pct 0.45)
  *Increasing enhancers (Color, Contrast, Brightness, Sharpness): factor 1 +- 0.9 * level/10
  plain enhancers (inc0 lists): factor 0.1 + 1.8 * level/10
  PosterizeIncreasing  bits = 4 - int(4 * level/10)    Posterize: int(4 * level/10)
  SolarizeIncreasing   thresh = 256 - int(256 * level/10)   Solarize: int(256 * level/10)
  SolarizeAdd          add int(110 * level/10) below 128
  AutoContrast, Equalize, Invert: no argument
Geometric ops resample with the recipe's interpolation (bicubic for ConvNeXt/DeiT; timm passes
the train interpolation to RandAugment unless it is 'random', when each op picks bilinear or
bicubic).

Grey ("L") images: every op is defined on L and none is dropped. ColorIncreasing is the
identity on a grey image (ImageEnhance.Color blends with the image's own greyscale, which is
the image), exactly as it is on an RGB copy of a grey image in timm; it stays in the list so
each other op keeps timm's frequency (chosen with probability 1 - (14/15)^2 per image). The
fill of the geometric ops is the grey level of the mean.

Config strings (`parse_config`): timm's `rand-<sections>` with sections m<int> (magnitude,
default 10), n<int> (ops per image, default 2), mstd<float> (magnitude noise, default 0),
inc1 (the increasing op list). timm reads `inc<anything>` as on (it tests bool('0'), which is
True), so `inc0` would silently mean inc1: it is refused here; leave `inc` out for the plain
list. timm's `w<k>` (weighted op choice) is not supported and is refused.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Callable

from PIL import Image, ImageEnhance, ImageOps

from ..lang.errors import RecipeError

MAX_LEVEL = 10.0
TRANSLATE_PCT = 0.45

PLAIN_OPS = (
    "AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd",
    "Color", "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel",
    "TranslateYRel",
)  # timm _RAND_TRANSFORMS
INCREASING_OPS = (
    "AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing",
    "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing",
    "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel",
)  # timm _RAND_INCREASING_TRANSFORMS
GEOMETRIC = frozenset({"Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"})

RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


@dataclass(frozen=True)
class RandAugmentConfig:
    """What a timm `rand-...` string says: magnitude (0..10), ops per image, the std of the
    magnitude's Gaussian noise, and whether the increasing op list is used."""

    magnitude: float = 10.0
    num_ops: int = 2
    magnitude_std: float = 0.0
    increasing: bool = False
    prob: float = 0.5  # timm's rand_augment_ops: every op applies with probability 0.5

    def __post_init__(self):
        if not 0 <= self.magnitude <= MAX_LEVEL:
            raise RecipeError(f"RandAugment magnitude {self.magnitude:g} is outside 0..10",
                              code="E610", hint="timm's magnitudes run from 0 to 10; the recipe uses 9")
        if self.num_ops < 1 or self.magnitude_std < 0:
            raise RecipeError(f"RandAugment needs at least one op and a noise std >= 0, got "
                              f"n={self.num_ops}, mstd={self.magnitude_std:g}", code="E610",
                              hint="the recipe uses n=2 ops per image and mstd0.5")

    def __str__(self) -> str:
        m = int(self.magnitude) if float(self.magnitude).is_integer() else self.magnitude
        parts = ["rand", f"m{m}"]
        if self.num_ops != 2:
            parts.append(f"n{self.num_ops}")
        if self.magnitude_std:
            parts.append(f"mstd{self.magnitude_std:g}")
        if self.increasing:
            parts.append("inc1")
        return "-".join(parts)

    @property
    def ops(self) -> tuple[str, ...]:
        return INCREASING_OPS if self.increasing else PLAIN_OPS


def parse_config(text: str) -> RandAugmentConfig:
    """A timm RandAugment string ('rand-m9-mstd0.5-inc1') as a RandAugmentConfig."""
    def bad(why: str) -> RecipeError:
        return RecipeError(f"cannot read RandAugment config {text!r}: {why}", code="E610",
                           hint="write it as timm does, e.g. rand-m9-mstd0.5-inc1 "
                                "(sections m<int>, n<int>, mstd<float>, inc1)")

    sections = text.split("-")
    if sections[0] != "rand":
        raise bad("it must start with 'rand'")
    values: dict = {}
    for section in sections[1:]:
        match = re.fullmatch(r"([a-z]+)(\d.*)", section)
        if not match:
            raise bad(f"section {section!r} is not a name followed by a number")
        key, val = match.groups()
        if key in values:
            raise bad(f"section {key!r} is given twice")
        try:
            if key == "m":
                values[key] = int(val)
            elif key == "n":
                values[key] = int(val)
            elif key == "mstd":
                values[key] = float(val)
            elif key == "inc":
                if int(val) != 1:
                    raise bad("timm reads any 'inc' section as inc1 (bool('0') is True); "
                              "leave 'inc' out for the plain op list")
                values[key] = True
            elif key == "w":
                raise bad("weighted op choice (w<k>) is not supported")
            else:
                raise bad(f"unknown section {key!r}")
        except ValueError:
            raise bad(f"{val!r} is not a valid number for {key!r}") from None
    return RandAugmentConfig(magnitude=values.get("m", 10), num_ops=values.get("n", 2),
                             magnitude_std=values.get("mstd", 0.0),
                             increasing=values.get("inc", False))


# -- level -> argument (timm 0.3.2) -------------------------------------------------------

def _negate(v: float, rng: random.Random) -> float:
    return -v if rng.random() > 0.5 else v  # timm _randomly_negate


def _enhance(level, rng):
    return level / MAX_LEVEL * 1.8 + 0.1


def _enhance_increasing(level, rng):
    return 1.0 + _negate(level / MAX_LEVEL * 0.9, rng)


def _posterize(level, rng):
    return int(level / MAX_LEVEL * 4)


def _solarize(level, rng):
    return int(level / MAX_LEVEL * 256)


LEVEL_TO_ARG: dict[str, Callable | None] = {
    "AutoContrast": None, "Equalize": None, "Invert": None,
    "Rotate": lambda level, rng: _negate(level / MAX_LEVEL * 30.0, rng),
    "Posterize": _posterize,
    "PosterizeIncreasing": lambda level, rng: 4 - _posterize(level, rng),
    "Solarize": _solarize,
    "SolarizeIncreasing": lambda level, rng: 256 - _solarize(level, rng),
    "SolarizeAdd": lambda level, rng: int(level / MAX_LEVEL * 110),
    "Color": _enhance, "Contrast": _enhance, "Brightness": _enhance, "Sharpness": _enhance,
    "ColorIncreasing": _enhance_increasing, "ContrastIncreasing": _enhance_increasing,
    "BrightnessIncreasing": _enhance_increasing, "SharpnessIncreasing": _enhance_increasing,
    "ShearX": lambda level, rng: _negate(level / MAX_LEVEL * 0.3, rng),
    "ShearY": lambda level, rng: _negate(level / MAX_LEVEL * 0.3, rng),
    "TranslateXRel": lambda level, rng: _negate(level / MAX_LEVEL * TRANSLATE_PCT, rng),
    "TranslateYRel": lambda level, rng: _negate(level / MAX_LEVEL * TRANSLATE_PCT, rng),
}


# -- the ops (timm 0.3.2 auto_augment.py) -------------------------------------------------

def _affine(img, matrix, fill, resample):
    return img.transform(img.size, Image.Transform.AFFINE, matrix, resample=resample, fillcolor=fill)


def _solarize_add(img, add, thresh=128):
    lut = [min(255, i + add) if i < thresh else i for i in range(256)]
    return img.point(lut * len(img.getbands()))


def _posterize_op(img, bits):
    """Keep the `bits` high bits. bits = 0 (PosterizeIncreasing at magnitude 10) gives black, as
    PIL's posterize did when timm 0.3.2 was written; recent Pillow refuses bits < 1, so the
    mask ~(2**(8 - bits) - 1) is applied here as a lookup table."""
    if bits >= 8:
        return img
    mask = ~(2 ** (8 - bits) - 1)
    return img.point([i & mask for i in range(256)] * len(img.getbands()))


OPS: dict[str, Callable] = {
    "AutoContrast": lambda img, arg, fill, rs: ImageOps.autocontrast(img),
    "Equalize": lambda img, arg, fill, rs: ImageOps.equalize(img),
    "Invert": lambda img, arg, fill, rs: ImageOps.invert(img),
    "Rotate": lambda img, arg, fill, rs: img.rotate(arg, resample=rs, fillcolor=fill),
    "Posterize": lambda img, arg, fill, rs: _posterize_op(img, arg),
    "Solarize": lambda img, arg, fill, rs: ImageOps.solarize(img, arg),
    "SolarizeAdd": lambda img, arg, fill, rs: _solarize_add(img, arg),
    "Color": lambda img, arg, fill, rs: ImageEnhance.Color(img).enhance(arg),
    "Contrast": lambda img, arg, fill, rs: ImageEnhance.Contrast(img).enhance(arg),
    "Brightness": lambda img, arg, fill, rs: ImageEnhance.Brightness(img).enhance(arg),
    "Sharpness": lambda img, arg, fill, rs: ImageEnhance.Sharpness(img).enhance(arg),
    "ShearX": lambda img, arg, fill, rs: _affine(img, (1, arg, 0, 0, 1, 0), fill, rs),
    "ShearY": lambda img, arg, fill, rs: _affine(img, (1, 0, 0, arg, 1, 0), fill, rs),
    "TranslateXRel": lambda img, arg, fill, rs: _affine(img, (1, 0, arg * img.size[0], 0, 1, 0), fill, rs),
    "TranslateYRel": lambda img, arg, fill, rs: _affine(img, (1, 0, 0, 0, 1, arg * img.size[1]), fill, rs),
}
for _name in ("Posterize", "Solarize", "Color", "Contrast", "Brightness", "Sharpness"):
    OPS[_name + "Increasing"] = OPS[_name]


@dataclass(frozen=True)
class Step:
    """One chosen op of one image: its name, whether it applies, its argument (None for ops
    without one) and the resampling filter (geometric ops only)."""

    name: str
    applied: bool
    arg: float | int | None = None
    resample: int | None = None


def fill_color(mean, channels: int) -> int | tuple[int, ...]:
    """timm's fill for the geometric ops: round(255 * mean) per channel; on grey images the
    grey level of an RGB mean (ITU-R 601, as PIL's convert('L')) or the one mean given."""
    rgb = tuple(min(255, round(255 * m)) for m in mean)
    if channels == 3:
        if len(rgb) != 3:
            raise RecipeError(f"an RGB network needs 3 mean values, got {len(rgb)}", code="E612")
        return rgb
    if len(rgb) == 1:
        return rgb[0]
    if len(rgb) == 3:
        return min(255, round((299 * rgb[0] + 587 * rgb[1] + 114 * rgb[2]) / 1000))
    raise RecipeError(f"a grey network needs 1 or 3 mean values, got {len(rgb)}", code="E612")


class RandAugment:
    """timm's RandAugment: `RandAugment(parse_config('rand-m9-mstd0.5-inc1'), fill=...)(img, rng)`."""

    def __init__(self, config: RandAugmentConfig | str, *, fill: int | tuple[int, ...] = (124, 116, 104),
                 interpolation: str = "bicubic"):
        self.config = parse_config(config) if isinstance(config, str) else config
        if interpolation not in ("bilinear", "bicubic", "random"):
            raise RecipeError(f"RandAugment interpolation must be bilinear, bicubic or random, "
                              f"got {interpolation!r}", code="E612")
        self.fill = fill
        self.interpolation = interpolation

    def __repr__(self) -> str:
        return f"RandAugment({self.config}, fill={self.fill}, interpolation={self.interpolation})"

    def draw(self, rng: random.Random) -> list[Step]:
        """The random decisions for one image, in timm's order."""
        cfg, ops = self.config, self.config.ops
        chosen = [ops[rng.randrange(len(ops))] for _ in range(cfg.num_ops)]
        steps = []
        for name in chosen:
            if cfg.prob < 1.0 and rng.random() > cfg.prob:
                steps.append(Step(name, False))
                continue
            m = cfg.magnitude
            if cfg.magnitude_std > 0:
                m = rng.gauss(m, cfg.magnitude_std)
            m = min(MAX_LEVEL, max(0.0, m))
            level_fn = LEVEL_TO_ARG[name]
            arg = level_fn(m, rng) if level_fn is not None else None
            resample = None
            if name in GEOMETRIC:
                resample = (rng.choice((RESAMPLE["bilinear"], RESAMPLE["bicubic"]))
                            if self.interpolation == "random" else RESAMPLE[self.interpolation])
            steps.append(Step(name, True, arg, resample))
        return steps

    def apply(self, img: Image.Image, steps: list[Step]) -> Image.Image:
        for step in steps:
            if step.applied:
                img = OPS[step.name](img, step.arg, self.fill, step.resample)
        return img

    def __call__(self, img: Image.Image, rng: random.Random) -> Image.Image:
        return self.apply(img, self.draw(rng))
