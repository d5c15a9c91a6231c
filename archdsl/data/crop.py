"""Geometry of the per-image pipeline: timm's RandomResizedCrop, the horizontal flip, the
official ConvNeXt/DeiT evaluation resize + centre crop, and reduced-scale JPEG decoding.

The crop is decided on the image's header size before any pixel is decoded, so a JPEG can be
decoded at 1/2, 1/4 or 1/8 scale (PIL `draft`, libjpeg's DCT scaling) when the crop is still at
least the output size at that scale (`draft=True`). Without `draft` the pixels are those of
timm/torchvision: crop the full-resolution image, then resize the crop.

RandomResizedCrop (timm 0.3.2 RandomResizedCropAndInterpolation.get_params, W x H image):
  10 attempts: area = U(scale) * W*H, aspect = exp(U(log ratio)),
    w = round(sqrt(area * aspect)), h = round(sqrt(area / aspect));
    the first with w <= W and h <= H is taken, top = randint(0, H - h), left = randint(0, W - w).
  Fallback: the central crop of the whole image clamped to the ratio range. An empty box
  (possible only on images of a few pixels, where timm's resize crashes) is a failed attempt.
  The crop is resized to (H_out, W_out) with the interpolation (bicubic, bilinear, or random:
  one of the two per image, drawn after the box as timm does).
Evaluation (ConvNeXt datasets.build_transform): below 384 resize the shorter side to
int(size / crop_pct) (torchvision Resize: the longer side int(size * long / short)) and take the
centre crop at torchvision's offsets int(round((H - h) / 2)); at 384 and above resize to
(size, size) without cropping.
"""
from __future__ import annotations

import math
import random
from typing import Callable

from PIL import Image

from ..lang.errors import RecipeError

INTERPOLATIONS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}
DRAFT_SCALES = (8, 4, 2, 1)  # the JPEG DCT scalings PIL's draft can ask libjpeg for

Convert = Callable[[Image.Image], Image.Image]
Box = tuple[int, int, int, int]  # left, top, width, height in the image's header coordinates


def check_size(size) -> tuple[int, int]:
    """(H, W) from an int or a pair, each >= 1."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or not all(isinstance(v, int) and v >= 1 for v in hw):
        raise RecipeError(f"an image size is an int or (H, W) of positive ints, got {size!r}", code="E612")
    return hw


def check_interpolation(name: str) -> str:
    allowed = ("bilinear", "bicubic", "random")
    if name not in allowed:
        raise RecipeError(f"interpolation must be one of {', '.join(allowed)}, got {name!r}", code="E612")
    return name


def rrc_box(width: int, height: int, rng: random.Random, scale=(0.08, 1.0),
            ratio=(3 / 4, 4 / 3)) -> Box:
    """timm's RandomResizedCrop box for a width x height image: (left, top, w, h)."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = rng.uniform(*scale) * area
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:  # timm: w <= W and h <= H (an empty box crashes it)
            top = rng.randint(0, height - h)
            left = rng.randint(0, width - w)
            return left, top, w, h
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def draft_scale(crop_w: float, crop_h: float, out_w: int, out_h: int) -> int:
    """The largest JPEG reduction (8, 4, 2, 1) that keeps a crop_w x crop_h region at least
    out_w x out_h pixels."""
    return next((s for s in DRAFT_SCALES if crop_w >= s * out_w and crop_h >= s * out_h), 1)


def load(img: Image.Image, convert: Convert,
         need: tuple[float, float, int, int] | None) -> tuple[Image.Image, float]:
    """Decode `img` through `convert` and return it with the factor from header coordinates to
    its pixels (1, or 1/s after a reduced-scale decode). With `need` = (region_w, region_h,
    out_w, out_h) and a JPEG not yet decoded, PIL is first asked for the largest reduction s that
    keeps the region at least out_w x out_h."""
    factor, size0 = 1.0, img.size
    if need is not None and img.format == "JPEG":
        s = draft_scale(*need)
        drafted = img.draft(img.mode, (img.size[0] // s, img.size[1] // s)) if s > 1 else None
        if drafted is not None:  # (mode, box of the whole original image at the new scale)
            factor = drafted[1][2] / size0[0]
    size = img.size
    img = convert(img)
    if img.size != size:
        raise ValueError(f"convert changed the image size from {size} to {img.size}; the crop "
                         "was decided on the header size, so convert must keep the geometry")
    return img, factor


def resized_crop(img: Image.Image, convert: Convert, box: Box, out_hw: tuple[int, int],
                 resample: int, draft: bool) -> Image.Image:
    """Decode, crop `box` (header coordinates) and resize it to out_hw = (H, W)."""
    out_h, out_w = out_hw
    left, top, w, h = box
    img, f = load(img, convert, (w, h, out_w, out_h) if draft else None)
    if f == 1.0:  # full resolution: crop, then resize the crop (torchvision resized_crop)
        return img.crop((left, top, left + w, top + h)).resize((out_w, out_h), resample)
    return img.resize((out_w, out_h), resample, box=(left * f, top * f, (left + w) * f, (top + h) * f))


class RandomResizedCrop:
    """timm's RandomResizedCropAndInterpolation on a lazily opened image."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), interpolation="bicubic",
                 draft: bool = False):
        self.size = check_size(size)
        if not (0 < scale[0] <= scale[1] <= 1) or not (0 < ratio[0] <= ratio[1]):
            raise RecipeError(f"RandomResizedCrop needs 0 < scale min <= max <= 1 and 0 < ratio "
                              f"min <= max, got scale={tuple(scale)}, ratio={tuple(ratio)}", code="E612")
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        self.interpolation = check_interpolation(interpolation)
        self.draft = draft

    def __call__(self, img: Image.Image, rng: random.Random, convert: Convert) -> Image.Image:
        box = rrc_box(img.size[0], img.size[1], rng, self.scale, self.ratio)
        name = self.interpolation
        if name == "random":
            name = rng.choice(("bilinear", "bicubic"))
        return resized_crop(img, convert, box, self.size, INTERPOLATIONS[name], self.draft)


def hflip(img: Image.Image, rng: random.Random, p: float = 0.5) -> Image.Image:
    """torchvision RandomHorizontalFlip: mirror when U(0, 1) < p."""
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < p else img


def resize_shorter(width: int, height: int, size: int) -> tuple[int, int]:
    """torchvision Resize(int): the shorter side becomes `size`, the longer int(size * long / short)."""
    if width <= height:
        return size, int(size * height / width)
    return int(size * width / height), size


def center_box(width: int, height: int, out_h: int, out_w: int) -> tuple[int, int, int, int]:
    """torchvision CenterCrop's (x0, y0, x1, y1)."""
    top = int(round((height - out_h) / 2.0))
    left = int(round((width - out_w) / 2.0))
    return left, top, left + out_w, top + out_h


class CenterCropEval:
    """The official ConvNeXt evaluation geometry (DeiT's below 384 too)."""

    def __init__(self, size, crop_pct: float = 0.875, interpolation: str = "bicubic", draft: bool = False):
        self.size = check_size(size)
        if not 0 < crop_pct <= 1:
            raise RecipeError(f"crop_pct must be in (0, 1], got {crop_pct}", code="E612")
        self.crop_pct = crop_pct
        # evaluation has no random filter: 'random' (a training setting) evaluates bicubic, as
        # ConvNeXt's evaluation transform does whatever the training interpolation
        name = check_interpolation(interpolation)
        self.resample = INTERPOLATIONS["bicubic" if name == "random" else name]
        self.draft = draft

    def target(self, width: int, height: int) -> tuple[int, int]:
        """The size the whole image is resized to before the centre crop."""
        out_h, out_w = self.size
        if min(out_h, out_w) >= 384:
            return out_w, out_h
        if out_h == out_w:
            return resize_shorter(width, height, int(out_h / self.crop_pct))
        # non-square outputs (archdsl's extension): the smallest aspect-preserving resize that
        # covers (H, W) / crop_pct
        k = max(int(out_h / self.crop_pct) / height, int(out_w / self.crop_pct) / width)
        return max(out_w, int(width * k + 0.5)), max(out_h, int(height * k + 0.5))

    def __call__(self, img: Image.Image, convert: Convert) -> Image.Image:
        width, height = img.size
        tw, th = self.target(width, height)
        img, f = load(img, convert, (width, height, tw, th) if self.draft else None)
        # after a reduced decode the image is ceil(W/s) wide but the original spans W/s of it
        img = img.resize((tw, th), self.resample,
                         box=None if f == 1.0 else (0, 0, width * f, height * f))
        out_h, out_w = self.size
        if (tw, th) == (out_w, out_h):
            return img
        return img.crop(center_box(tw, th, out_h, out_w))
