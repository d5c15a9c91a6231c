"""RandomErasing against timm 0.3.2's RandomErasing._erase (re-implemented here with Python's
random): box statistics by two-sample KS, the per-pixel N(0, 1) fill, the probability per
sample, and the draws from torch's global generator."""
import math
import random

import pytest
import torch
from scipy import stats

from archdsl.data.erasing import RandomErasing
from archdsl.lang.errors import RecipeError


def timm_box(rng, h_img, w_img, min_area=0.02, max_area=1 / 3, min_aspect=0.3):
    """One box of timm's _erase (count 1), or None when the ten attempts all fail."""
    log_aspect = (math.log(min_aspect), math.log(1 / min_aspect))
    for _ in range(10):
        target_area = rng.uniform(min_area, max_area) * h_img * w_img
        aspect = math.exp(rng.uniform(*log_aspect))
        h = int(round(math.sqrt(target_area * aspect)))
        w = int(round(math.sqrt(target_area / aspect)))
        if w < w_img and h < h_img:
            return rng.randint(0, h_img - h), rng.randint(0, w_img - w), h, w
    return None


def test_box_statistics_follow_timm():
    torch.manual_seed(0)
    ours = RandomErasing(1.0).boxes(600, 48, 40)
    rng = random.Random(1)
    ref = [b for b in (timm_box(rng, 48, 40) for _ in range(600)) if b is not None]
    assert len({i for i, *_ in ours}) == len(ours)  # one box per sample
    assert abs(len(ours) - len(ref)) < 25  # samples where no attempt fits: as rare as in timm
    for stat in (lambda t, l, h, w: h * w, lambda t, l, h, w: math.log(h / w),
                 lambda t, l, h, w: t + h / 2, lambda t, l, h, w: l + w / 2):
        a = [stat(*b[1:]) for b in ours]
        b = [stat(*b) for b in ref]
        assert stats.ks_2samp(a, b).pvalue > 1e-3
    for _, top, left, h, w in ours:
        assert 0 <= top and top + h <= 48 and 0 <= left and left + w <= 40 and h < 48 and w < 40
    # randint(0, H - h) includes both ends: boxes touch every border now and then
    assert sum(t == 0 for _, t, *_ in ours) > 3 and sum(t + h == 48 for _, t, _, h, _ in ours) > 3
    assert sum(l == 0 for _, _, l, *_ in ours) > 3 and sum(l + w == 40 for _, _, l, _, w in ours) > 3


def test_pixel_fill_is_standard_normal_inside_one_rectangle_per_sample():
    torch.manual_seed(3)
    x = torch.full((64, 3, 32, 32), 7.0)
    RandomErasing(1.0, mode="pixel")(x)
    erased = x != 7.0
    values = x[erased]
    assert len(values) > 5000
    assert abs(float(values.mean())) < 0.05 and abs(float(values.std()) - 1) < 0.05
    assert stats.kstest(values[:4000].numpy(), "norm").pvalue > 1e-3
    for i in range(64):
        m = erased[i].any(0)
        if not m.any():
            continue
        rows, cols = m.any(1).nonzero().squeeze(1), m.any(0).nonzero().squeeze(1)
        box = m[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.all() and int(m.sum()) == box.numel()  # a full rectangle, nothing outside
        assert erased[i, :, m].all()  # every channel of it


def test_probability_per_sample_and_global_generator():
    torch.manual_seed(5)
    x = torch.zeros(400, 1, 24, 24)
    RandomErasing(0.25, mode="const")(x.add_(1.0))
    hit = (x == 0).flatten(1).any(1)
    assert stats.binomtest(int(hit.sum()), 400, 0.25).pvalue > 1e-3
    a, b = torch.zeros(8, 3, 16, 16), torch.zeros(8, 3, 16, 16)
    torch.manual_seed(9); RandomErasing(0.5)(a)
    torch.manual_seed(9); RandomErasing(0.5)(b)
    assert torch.equal(a, b) and a.abs().sum() > 0


def test_rand_mode_is_one_colour_per_channel_and_single_images_work():
    torch.manual_seed(2)
    img = torch.full((3, 40, 40), 9.0)
    RandomErasing(1.0, mode="rand")(img)
    for c in range(3):
        vals = img[c][img[c] != 9.0]
        assert len(vals) > 0 and torch.all(vals == vals[0])


def test_bad_parameters_are_recipe_errors():
    for kwargs in ({"probability": 1.5}, {"mode": "noise"}, {"min_area": 0.5, "max_area": 0.1}):
        with pytest.raises(RecipeError) as e:
            RandomErasing(**kwargs)
        assert e.value.code == "E612"
