"""The per-image pipelines in timm's order (RandomResizedCrop -> flip -> RandAugment or colour
jitter -> uint8 tensor), the colour-jitter rule of timm's factory, grey images, and the
evaluation pipeline; each compared with a composition written here from the definitions."""
import io
import math
import random

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance
from scipy import stats

from archdsl.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform, train_transform
from archdsl.lang.errors import RecipeError


def photo(w=150, h=110, mode="RGB"):
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 // w, y * 255 // h, ((x // 9 + y // 7) % 2) * 200 + 20], -1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).convert(mode).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def opened(data):
    return Image.open(io.BytesIO(data))  # lazy, as S's open_image gives it


def rgb(img):
    return img.convert("RGB")


def grey(img):
    return img.convert("L")


def chw(img):
    a = np.asarray(img)
    return torch.from_numpy((a[None] if a.ndim == 2 else a.transpose(2, 0, 1)).copy())


def ref_rrc_flip(img, rng, out_hw, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """timm RandomResizedCropAndInterpolation(bicubic) then RandomHorizontalFlip(0.5)."""
    width, height = img.size
    for _ in range(10):
        area = rng.uniform(*scale) * width * height
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w, h = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
        if w <= width and h <= height:
            i, j = rng.randint(0, height - h), rng.randint(0, width - w)
            break
    else:
        raise AssertionError("test images are never that thin")
    img = img.crop((j, i, j + w, i + h)).resize(out_hw[::-1], Image.BICUBIC)
    return img.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else img


def test_crop_and_flip_in_timm_order():
    data = photo()
    t = train_transform((40, 48))
    for seed in range(20):
        x = t(opened(data), random.Random(seed), rgb)
        assert x.dtype == torch.uint8 and x.shape == (3, 40, 48)
        ref = ref_rrc_flip(rgb(opened(data)), random.Random(seed), (40, 48))
        assert torch.equal(x, chw(ref))


def test_colour_jitter_is_torchvision_and_only_without_randaugment():
    data = photo()
    t = train_transform(32, color_jitter=0.4)
    factors = []
    for seed in range(20):
        rng = random.Random(seed)
        img = ref_rrc_flip(rgb(opened(data)), rng, (32, 32))
        ops = [ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color]
        rng.shuffle(ops)  # torchvision: a random order of the three
        for op in ops:
            f = rng.uniform(0.6, 1.4)
            factors.append(f)
            img = op(img).enhance(f)
        assert torch.equal(t(opened(data), random.Random(seed), rgb), chw(img))
    assert stats.kstest(factors, stats.uniform(0.6, 0.8).cdf).pvalue > 1e-3
    with_ra = train_transform(32, randaugment=(9, 0.5), color_jitter=0.4)
    without = train_transform(32, randaugment="rand-m9-mstd0.5-inc1")
    assert with_ra.color_jitter is None
    for seed in range(10):
        assert torch.equal(with_ra(opened(data), random.Random(seed), rgb),
                           without(opened(data), random.Random(seed), rgb))


def test_randaugment_runs_after_crop_and_flip():
    data = photo()
    t = train_transform(32, randaugment=(9, 0.5))
    changed = 0
    for seed in range(20):
        x = t(opened(data), random.Random(seed), rgb)
        rng = random.Random(seed)
        plain = ref_rrc_flip(rgb(opened(data)), rng, (32, 32))
        assert torch.equal(x, chw(t.randaugment(plain, rng)))
        changed += not torch.equal(x, chw(plain))
    assert changed >= 10  # 1 - 0.5^2 of the images get at least one op


def test_grey_network_and_mode_check():
    data = photo(mode="L")
    t = train_transform(24, randaugment=(9, 0.5), channels=1)
    assert t.randaugment.fill == round(0.299 * 124 + 0.587 * 116 + 0.114 * 104)
    x = t(opened(data), random.Random(0), grey)
    assert x.shape == (1, 24, 24) and x.dtype == torch.uint8
    with pytest.raises(TypeError, match="needs L"):
        t(opened(data), random.Random(0), rgb)
    e = eval_transform(24, channels=1)(opened(photo()), None, grey)
    assert e.shape == (1, 24, 24)


def test_same_seed_same_tensor_and_no_crop_option():
    data = photo()
    t = train_transform(32, randaugment="rand-m9-mstd0.5-inc1", interpolation="random")
    a = [t(opened(data), random.Random(s), rgb) for s in range(5)]
    b = [t(opened(data), random.Random(s), rgb) for s in range(5)]
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not all(torch.equal(a[0], q) for q in a[1:])
    img = rgb(opened(data))  # rrc=False: timm's no-aug train geometry, shorter side then centre crop
    ref = img.resize((43, 32), Image.BICUBIC).crop((6, 0, 38, 32))
    assert torch.equal(train_transform(32, rrc=False, flip=False)(opened(data), random.Random(0), rgb), chw(ref))


def test_eval_transform_and_constants():
    data = photo(151, 111)
    x = eval_transform(64)(opened(data), None, rgb)
    img = rgb(opened(data)).resize((99, 73), Image.BICUBIC)  # shorter side int(64 / 0.875) = 73
    assert torch.equal(x, chw(img.crop((18, 4, 82, 68))))  # int(round(35 / 2)), int(round(9 / 2))
    assert IMAGENET_MEAN == (0.485, 0.456, 0.406) and IMAGENET_STD == (0.229, 0.224, 0.225)


@pytest.mark.parametrize("kwargs", [{"channels": 2}, {"randaugment": "rand-m9-inc0"},
                                    {"randaugment": (1, 2, 3)}, {"color_jitter": -0.1},
                                    {"interpolation": "lanczos"}])
def test_bad_options_are_recipe_errors(kwargs):
    with pytest.raises(RecipeError):
        train_transform(32, **kwargs)
