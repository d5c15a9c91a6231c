"""The crop geometry against timm 0.3.2 RandomResizedCropAndInterpolation and torchvision's
Resize + CenterCrop (ConvNeXt's evaluation transform), re-implemented here independently."""
import io
import math
import random

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from archdsl.data.crop import CenterCropEval, RandomResizedCrop, draft_scale, hflip, rrc_box
from archdsl.lang.errors import RecipeError


def timm_rrc_params(width, height, rng, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """timm get_params, returning (i, j, h, w) = (top, left, h, w)."""
    area = width * height
    for _ in range(10):
        target_area = rng.uniform(*scale) * area
        aspect_ratio = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w = int(round(math.sqrt(target_area * aspect_ratio)))
        h = int(round(math.sqrt(target_area / aspect_ratio)))
        if w <= width and h <= height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w = width
        h = int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        h = height
        w = int(round(h * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def picture(w, h, seed=0):
    r = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([(x * 7 + y * 3) % 256, (x * y) % 256, r.integers(0, 256, (h, w))], -1)
    return Image.fromarray(a.astype(np.uint8))


def rgb(img):
    return img.convert("RGB")


@pytest.mark.parametrize("size", [(131, 97), (97, 131), (400, 20), (20, 400), (64, 64)])
def test_rrc_box_is_timm_get_params(size):
    for seed in range(200):
        left, top, w, h = rrc_box(*size, random.Random(seed))
        assert (top, left, h, w) == timm_rrc_params(*size, random.Random(seed))
        assert 0 <= left and left + w <= size[0] and 0 <= top and top + h <= size[1]


def test_rrc_area_and_log_aspect_follow_the_definition():
    # no rejection here (largest side sqrt(0.5 * 4/3) * 1000 < 1000): area ~ U(scale), log aspect ~ U
    boxes = [rrc_box(1000, 1000, random.Random(s), scale=(0.08, 0.5)) for s in range(400)]
    area = np.array([w * h / 1e6 for _, _, w, h in boxes])
    log_aspect = np.array([math.log(w / h) for _, _, w, h in boxes])
    assert stats.kstest(area, stats.uniform(0.08, 0.42).cdf).pvalue > 1e-3
    lo, hi = math.log(3 / 4), math.log(4 / 3)
    assert stats.kstest(log_aspect, stats.uniform(lo, hi - lo).cdf).pvalue > 1e-3
    # and the default scale on a 4:3 image: two-sample KS against the re-implementation
    ours = [rrc_box(500, 375, random.Random(s)) for s in range(400)]
    ref = [timm_rrc_params(500, 375, random.Random(10_000 + s)) for s in range(400)]
    assert stats.ks_2samp([w * h for *_, w, h in ours], [w * h for *_, h, w in ref]).pvalue > 1e-3


def test_rrc_pixels_are_the_resized_crop_of_the_original():
    img = picture(131, 97)
    for seed, interpolation in enumerate(["bicubic", "bilinear", "random"] * 4):
        out = RandomResizedCrop((48, 40), interpolation=interpolation)(img, random.Random(seed), rgb)
        rng = random.Random(seed)
        i, j, h, w = timm_rrc_params(131, 97, rng)
        resample = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}.get(interpolation)
        if interpolation == "random":
            resample = rng.choice([Image.BILINEAR, Image.BICUBIC])
        ref = img.crop((j, i, j + w, i + h)).resize((40, 48), resample)
        assert out.size == (40, 48) and np.array_equal(np.asarray(out), np.asarray(ref))


def test_images_of_a_few_pixels_still_give_a_crop():
    for wh in ((1, 1), (2, 2), (3, 1)):
        for seed in range(20):
            left, top, w, h = rrc_box(*wh, random.Random(seed))
            assert w >= 1 and h >= 1
        assert RandomResizedCrop(8)(picture(*wh), random.Random(0), rgb).size == (8, 8)


def test_flip_half_the_time():
    img = picture(16, 8)
    flips = [np.array_equal(np.asarray(hflip(img, random.Random(s))), np.asarray(img)[:, ::-1])
             for s in range(400)]
    assert stats.binomtest(sum(flips), len(flips), 0.5).pvalue > 1e-3


def tv_eval(img, size, crop_pct, resample=Image.BICUBIC):
    """torchvision Resize(int(size / crop_pct)) + CenterCrop(size); Resize((size, size)) at >= 384."""
    if size >= 384:
        return img.resize((size, size), resample)
    short = int(size / crop_pct)
    w, h = img.size
    ow, oh = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    img = img.resize((ow, oh), resample)
    top, left = int(round((oh - size) / 2.0)), int(round((ow - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


@pytest.mark.parametrize("wh", [(133, 97), (97, 133), (75, 75), (301, 299), (64, 1001)])
@pytest.mark.parametrize("size,crop_pct", [(64, 0.875), (60, 0.875), (63, 0.95), (56, 1.0)])
def test_eval_resize_and_centre_crop_are_torchvision(wh, size, crop_pct):
    img = picture(*wh)
    out = CenterCropEval(size, crop_pct)(img, rgb)
    assert np.array_equal(np.asarray(out), np.asarray(tv_eval(img, size, crop_pct)))


def test_eval_with_the_random_training_filter_is_bicubic():
    img = picture(133, 97)
    out = CenterCropEval(64, interpolation="random")(img, rgb)
    assert np.array_equal(np.asarray(out), np.asarray(tv_eval(img, 64, 0.875)))


def test_eval_at_384_warps_without_crop():
    img = picture(141, 99)
    out = CenterCropEval(384)(img, rgb)
    assert np.array_equal(np.asarray(out), np.asarray(tv_eval(img, 384, 0.875)))


def test_eval_non_square_covers_the_output():
    out = CenterCropEval((40, 64))(picture(100, 300), rgb)
    assert out.size == (64, 40)


def jpeg_file(w, h):
    buf = io.BytesIO()
    img = picture(w, h).resize((w // 4, h // 4)).resize((w, h), Image.BICUBIC)  # smooth content
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_draft_scale_keeps_the_crop_at_least_the_output():
    assert draft_scale(900, 900, 224, 224) == 4
    assert draft_scale(447, 900, 224, 224) == 1
    assert draft_scale(448, 1000, 224, 224) == 2
    assert draft_scale(2000, 1900, 224, 224) == 8
    assert draft_scale(100, 100, 224, 224) == 1


def test_draft_decodes_smaller_with_the_same_box_and_close_pixels():
    data = jpeg_file(640, 480)
    sizes = []

    def convert(img):
        out = img.convert("RGB")
        sizes.append(out.size)
        return out

    crop, diffs = RandomResizedCrop(56), []
    for seed in range(20):
        full = crop(Image.open(io.BytesIO(data)), random.Random(seed), convert)
        small = RandomResizedCrop(56, draft=True)(Image.open(io.BytesIO(data)), random.Random(seed), convert)
        diffs.append(np.abs(np.asarray(full, np.int16) - np.asarray(small, np.int16)).mean())
    reduced = [s for s in sizes[1::2] if s != (640, 480)]
    assert len(reduced) >= 10  # most crops at 56 px allow 1/2 .. 1/8
    assert all(s in ((320, 240), (160, 120), (80, 60)) for s in reduced)
    assert float(np.mean(diffs)) < 4.0, diffs  # same crop, a few grey levels of resampling noise
    e_full = CenterCropEval(56)(Image.open(io.BytesIO(data)), rgb)
    e_small = CenterCropEval(56, draft=True)(Image.open(io.BytesIO(data)), rgb)
    assert np.abs(np.asarray(e_full, np.int16) - np.asarray(e_small, np.int16)).mean() < 4.0


def test_bad_parameters_are_recipe_errors():
    for make in (lambda: RandomResizedCrop(0), lambda: RandomResizedCrop(32, scale=(0.5, 0.1)),
                 lambda: RandomResizedCrop(32, interpolation="nearest"), lambda: CenterCropEval(32, 1.5),
                 lambda: CenterCropEval((32, 32, 3))):
        with pytest.raises(RecipeError) as e:
            make()
        assert e.value.code == "E612"
