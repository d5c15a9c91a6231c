"""The batch stage on the training device: uint8 -> float -> normalize -> erasing -> mixup,
as the recipe's lines say, with labels consistent. (Per-image transforms and the erasing/mixup
definitions themselves are tested against timm's in tests/data/.)"""
import pytest
import torch

from archdsl.lang.recipe import TrainRecipe
from archdsl.training.augment import BatchStage, loss_fn

B, C, H, W = 16, 1, 16, 16
MEAN, STD = (0.5,), (0.25,)


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (B, C, H, W), generator=g, dtype=torch.uint8), torch.randint(0, 10, (B,), generator=g)


def norm(x):
    return (x.float() / 255 - MEAN[0]) / STD[0]


def run(recipe, x, y, classes=10):
    torch.manual_seed(1)
    return BatchStage(recipe, MEAN, STD, classes)(x.clone(), y.clone())


def test_no_augmentation_only_normalizes_uint8():
    x, y = batch()
    xo, t = run(TrainRecipe(), x, y)
    assert xo.dtype == torch.float32 and torch.allclose(xo, norm(x))
    assert torch.equal(t, y)


@pytest.mark.parametrize("mode", ["pixel", "const"])
def test_erasing_fills_one_box_per_erased_image(mode):
    x, y = batch()
    xo, t = run(TrainRecipe(erasing=0.999, erasing_mode=mode), x, y)
    ref = norm(x)
    noise = []
    for o, r in zip(xo, ref):
        changed = ~torch.isclose(o, r)
        assert changed.any()
        rows, cols = changed[0].any(1).nonzero(), changed[0].any(0).nonzero()
        box = o[0, rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        if mode == "const":
            assert torch.all(box == 0)  # 0 after normalization = the mean
        noise.append(box.flatten())
    if mode == "pixel":  # per-pixel N(0, 1) in normalized units
        values = torch.cat(noise)
        assert abs(values.mean()) < 0.2 and 0.8 < values.std() < 1.2
    assert torch.equal(t, y)


def test_mixup_is_one_lambda_per_batch_with_the_flipped_partner_and_smoothing():
    # Image k is constant k/B with label k: a mixed image is lam * k + (1 - lam) * (B-1-k)
    x = (torch.arange(B) * (256 // B)).to(torch.uint8).view(B, 1, 1, 1).expand(B, C, H, W).contiguous()
    y = torch.arange(B)
    stage = BatchStage(TrainRecipe(mixup=0.8, label_smoothing=0.1), (0.0,), (1.0,), B)
    torch.manual_seed(3)
    xo, t = stage(x.clone(), y)
    lam = stage.mix.last.lam
    expect = lam * x.float() / 255 + (1 - lam) * x.flip(0).float() / 255
    assert torch.allclose(xo, expect, atol=1e-6)
    assert torch.allclose(t.sum(1), torch.ones(B)) and t.min() >= 0.1 / B - 1e-7


def test_an_odd_batch_left_by_a_skipped_image_still_mixes():
    x, y = batch()
    xo, t = run(TrainRecipe(mixup=0.8, cutmix=1.0), x[:7], y[:7])
    assert xo.shape[0] == 6 and t.shape == (6, 10)


def test_soft_loss_equals_hard_loss_on_one_hot():
    logits = torch.randn(8, 10)
    y = torch.randint(0, 10, (8,))
    soft = torch.nn.functional.one_hot(y, 10).float() * 0.9 + 0.01
    assert torch.allclose(loss_fn(logits, soft), loss_fn(logits, y, label_smoothing=0.1), atol=1e-6)
