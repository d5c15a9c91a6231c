"""The per-image pipelines a dataset runs in its DataLoader workers, as timm's
transforms_imagenet_train / ConvNeXt's evaluation transform, ending in a uint8 (C, H, W) tensor.

    t = train_transform((224, 224), randaugment="rand-m9-mstd0.5-inc1")
    x = t(open_image(path), random.Random(sample_seed(seed, epoch, index)), convert)

Training (timm transforms_imagenet_train, in this order):
  RandomResizedCrop (crop.py; rrc=False: resize the shorter side to the size and centre-crop,
  timm's transforms_noaug_train) -> horizontal flip p=0.5 -> RandAugment (randaugment.py) or,
  only when RandAugment is off, ColorJitter(b, b, b) (torchvision: brightness, contrast and
  saturation factors U(max(0, 1 - b), 1 + b) applied in a random order; timm ignores colour jitter
  when an auto-augment policy is given, and so does this) -> uint8 tensor.
Normalization, Random Erasing and Mixup/CutMix run later, on the batch (erasing.py, mixup.py).
Evaluation: crop.CenterCropEval -> uint8 tensor.

`convert(img) -> img` decodes the lazily opened image and brings it to "RGB" (channels=3) or
"L" (channels=1); it is called after the crop is decided, so `draft=True` can decode a JPEG at a
reduced scale. Every random draw comes from the `rng` passed in.
"""
from __future__ import annotations

import random
from typing import Callable

import torch
from PIL import Image, ImageEnhance

from ..lang.errors import RecipeError
from . import decode
from .crop import (INTERPOLATIONS, CenterCropEval, Convert, RandomResizedCrop, center_box, check_interpolation,
                   check_size, hflip, load, resize_shorter)
from .randaugment import RandAugment, RandAugmentConfig, fill_color, parse_config

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # timm IMAGENET_DEFAULT_MEAN
IMAGENET_STD = (0.229, 0.224, 0.225)  # timm IMAGENET_DEFAULT_STD

Transform = Callable[[Image.Image, random.Random, Convert], torch.Tensor]
MODES = {1: "L", 3: "RGB"}


def to_tensor(img: Image.Image, channels: int) -> torch.Tensor:
    """A PIL image of the network's mode as a uint8 (C, H, W) tensor."""
    if img.mode != MODES[channels]:
        raise TypeError(f"convert returned a {img.mode} image; a {channels}-channel network needs "
                        f"{MODES[channels]}")
    return decode.to_tensor(img)


def color_jitter(img: Image.Image, rng: random.Random, strength: float) -> Image.Image:
    """torchvision ColorJitter(strength, strength, strength) on a PIL image."""
    lo, hi = max(0.0, 1.0 - strength), 1.0 + strength
    ops = [ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color]
    rng.shuffle(ops)
    for op in ops:
        img = op(img).enhance(rng.uniform(lo, hi))
    return img


def _randaugment_config(spec) -> RandAugmentConfig:
    if isinstance(spec, RandAugmentConfig):
        return spec
    if isinstance(spec, str):
        return parse_config(spec)
    try:
        magnitude, std = spec
        return RandAugmentConfig(magnitude=float(magnitude), magnitude_std=float(std), increasing=True)
    except (TypeError, ValueError):
        raise RecipeError(f"randaugment is (magnitude, std), a timm string or None, got {spec!r}",
                          code="E612") from None


def _channels(channels: int) -> int:
    if channels not in MODES:
        raise RecipeError(f"images have 1 or 3 channels, the network takes {channels}", code="E612")
    return channels


class TrainTransform:
    def __init__(self, size, *, rrc=True, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), flip=True,
                 randaugment=None, color_jitter: float | None = None, interpolation="bicubic",
                 channels=3, mean=IMAGENET_MEAN, draft=False):
        self.size = check_size(size)
        self.channels = _channels(channels)
        self.crop = RandomResizedCrop(self.size, scale, ratio, interpolation, draft) if rrc else None
        self.interpolation = check_interpolation(interpolation)
        self.flip, self.draft = flip, draft
        self.randaugment = None
        if randaugment is not None:
            self.randaugment = RandAugment(_randaugment_config(randaugment),
                                           fill=fill_color(mean, self.channels), interpolation=interpolation)
        if color_jitter is not None and color_jitter < 0:
            raise RecipeError(f"color_jitter must be >= 0, got {color_jitter}", code="E612")
        # timm: colour jitter only when no auto-augment policy is given
        self.color_jitter = color_jitter if self.randaugment is None and color_jitter else None

    def __repr__(self) -> str:
        parts = [f"size={self.size}", "rrc" if self.crop else "resize+centre", f"flip={self.flip}",
                 repr(self.randaugment) if self.randaugment else f"color_jitter={self.color_jitter}",
                 f"channels={self.channels}", f"draft={self.draft}"]
        return f"TrainTransform({', '.join(parts)})"

    def _no_crop(self, img, rng, convert):
        """timm transforms_noaug_train's geometry: shorter side to the size, centre crop."""
        out_h, out_w = self.size
        name = self.interpolation if self.interpolation != "random" else "bilinear"  # as timm
        tw, th = resize_shorter(img.size[0], img.size[1], max(out_h, out_w))
        tw, th = max(tw, out_w), max(th, out_h)
        img, _ = load(img, convert, None)
        return img.resize((tw, th), INTERPOLATIONS[name]).crop(center_box(tw, th, out_h, out_w))

    def __call__(self, img: Image.Image, rng: random.Random, convert: Convert) -> torch.Tensor:
        img = self.crop(img, rng, convert) if self.crop else self._no_crop(img, rng, convert)
        if self.flip:
            img = hflip(img, rng)
        if self.randaugment is not None:
            img = self.randaugment(img, rng)
        elif self.color_jitter:
            img = color_jitter(img, rng, self.color_jitter)
        return to_tensor(img, self.channels)


class EvalTransform:
    def __init__(self, size, *, crop_pct=0.875, interpolation="bicubic", channels=3, draft=False):
        self.geometry = CenterCropEval(size, crop_pct, interpolation, draft)
        self.channels = _channels(channels)

    def __repr__(self) -> str:
        g = self.geometry
        return f"EvalTransform(size={g.size}, crop_pct={g.crop_pct}, channels={self.channels}, draft={g.draft})"

    def __call__(self, img: Image.Image, rng: random.Random | None, convert: Convert) -> torch.Tensor:
        return to_tensor(self.geometry(img, convert), self.channels)


def train_transform(size, **options) -> TrainTransform:
    """The training pipeline (see the module docstring); options as TrainTransform."""
    return TrainTransform(size, **options)


def eval_transform(size, **options) -> EvalTransform:
    """The evaluation pipeline: resize + centre crop (official ConvNeXt rule)."""
    return EvalTransform(size, **options)
