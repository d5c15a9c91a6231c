"""Mixup/CutMix against timm 0.3.2's Mixup(mode='batch'), re-implemented here: one lambda per
batch, partners from the flipped batch, the CutMix box and corrected lambda, and the soft
targets of timm's mixup_target formula."""
import numpy as np
import pytest
import torch
from scipy import stats

from archdsl.data.mixup import Mixup
from archdsl.lang.errors import RecipeError

K = 10


def timm_targets(y, lam, smoothing, k=K):
    off = smoothing / k
    on = 1.0 - smoothing + off
    y1 = torch.full((len(y), k), off).scatter_(1, y.view(-1, 1), on)
    y2 = torch.full((len(y), k), off).scatter_(1, y.flip(0).view(-1, 1), on)
    return y1 * lam + y2 * (1.0 - lam)


def batch(b=8, c=3, h=12, w=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, h, w, generator=g), torch.randint(0, K, (b,), generator=g)


def test_mixup_one_lambda_flipped_partners_and_timm_targets():
    mix = Mixup(0.8, 0.0, num_classes=K, label_smoothing=0.1)
    for seed in range(20):
        x, y = batch(seed=seed)
        torch.manual_seed(seed)
        out, t = mix(x.clone(), y)
        partner = x.flip(0)
        d = (x - partner).flatten()
        lam = float(((out - partner).flatten() @ d) / (d @ d))  # least squares over the batch
        assert torch.allclose(out, lam * x + (1 - lam) * partner, atol=1e-5)
        assert mix.last.kind == "mixup" and abs(mix.last.lam - lam) < 1e-4
        assert torch.allclose(t, timm_targets(y, mix.last.lam, 0.1), atol=1e-6)
        assert torch.allclose(t.sum(1), torch.ones(len(y)))


def test_cutmix_box_from_flipped_batch_with_corrected_lambda():
    mix = Mixup(0.0, 1.0, num_classes=K, label_smoothing=0.0)
    for seed in range(30):
        x, y = batch(h=16, w=12, seed=seed)
        torch.manual_seed(seed)
        out, t = mix(x.clone(), y)
        changed = (out != x).any(1).any(0)  # (H, W): pixels taken from the partner
        y0, y1, x0, x1 = mix.last.box
        box = torch.zeros(16, 12, dtype=torch.bool)
        box[y0:y1, x0:x1] = True
        assert torch.equal(changed, box)
        assert torch.equal(out[:, :, box], x.flip(0)[:, :, box])
        assert mix.last.lam == pytest.approx(1 - int(box.sum()) / (16 * 12))
        assert torch.allclose(t, timm_targets(y, mix.last.lam, 0.0), atol=1e-6)


def timm_rand_bbox_area(h, w, lam, rng):
    ratio = np.sqrt(1 - lam)
    cut_h, cut_w = int(h * ratio), int(w * ratio)
    cy, cx = rng.integers(0, h), rng.integers(0, w)
    yl, yh = np.clip(cy - cut_h // 2, 0, h), np.clip(cy + cut_h // 2, 0, h)
    xl, xh = np.clip(cx - cut_w // 2, 0, w), np.clip(cx + cut_w // 2, 0, w)
    return (yh - yl) * (xh - xl)


def test_switch_probability_and_lambda_distributions():
    x, y = batch(b=2, c=1, h=20, w=20)
    kinds, mix_lams, cut_lams, areas = [], [], [], []
    mix = Mixup(0.8, 1.0, num_classes=K, correct_lam=False)
    torch.manual_seed(0)
    for _ in range(500):
        mix(x.clone(), y)
        kinds.append(mix.last.kind)
        (cut_lams if mix.last.kind == "cutmix" else mix_lams).append(mix.last.lam)
        if mix.last.box:
            y0, y1, x0, x1 = mix.last.box
            areas.append((y1 - y0) * (x1 - x0))
            cut = int(20 * (1 - mix.last.lam) ** 0.5)  # timm: int(H * sqrt(1 - lam)), half each side
            assert y1 - y0 == 2 * (cut // 2) or y0 == 0 or y1 == 20
            assert x1 - x0 == 2 * (cut // 2) or x0 == 0 or x1 == 20
    assert stats.binomtest(kinds.count("cutmix"), 500, 0.5).pvalue > 1e-3
    assert stats.kstest(mix_lams, stats.beta(0.8, 0.8).cdf).pvalue > 1e-3
    assert stats.kstest(cut_lams, stats.beta(1.0, 1.0).cdf).pvalue > 1e-3
    rng = np.random.default_rng(0)
    ref = [timm_rand_bbox_area(20, 20, lam, rng) for lam in rng.beta(1.0, 1.0, 500)]
    assert stats.ks_2samp(areas, ref).pvalue > 1e-3


def test_unmixed_batches_still_get_smoothed_targets():
    x, y = batch()
    out, t = Mixup(0.8, 1.0, num_classes=K, prob=0.0, label_smoothing=0.1)(x.clone(), y)
    assert torch.equal(out, x)
    assert torch.allclose(t, timm_targets(y, 1.0, 0.1))
    assert float(t.max()) == pytest.approx(0.91) and float(t.min()) == pytest.approx(0.01)


def test_global_generator_and_odd_batches():
    x, y = batch()
    mix = Mixup(num_classes=K)
    torch.manual_seed(4); a = mix(x.clone(), y)
    torch.manual_seed(4); b = mix(x.clone(), y)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(RecipeError) as e:
        mix(x[:7].clone(), y[:7])
    assert e.value.code == "E611" and "even" in e.value.message and e.value.hint
    with pytest.raises(RecipeError):
        Mixup(0.0, 0.0, num_classes=K)
