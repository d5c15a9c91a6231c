"""Each augmentation changes a batch as its recipe line says, and labels stay consistent."""
import pytest
from pydantic import ValidationError
import torch

from archdsl.lang.recipe import TrainRecipe
from archdsl.training.augment import BatchAugment, MixCut, loss_fn

B, C, H, W = 16, 1, 16, 16
MEAN, STD = (0.5,), (0.25,)


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, C, H, W, generator=g), torch.randint(0, 10, (B,), generator=g)


def norm(x):
    return (x - MEAN[0]) / STD[0]


def run(recipe, x, y, classes=10, shape=(C, H, W)):
    torch.manual_seed(1)
    return BatchAugment(recipe, shape, MEAN, STD, classes)(x.clone(), y.clone())


def test_no_augmentation_only_normalizes():
    x, y = batch()
    xo, t = run(TrainRecipe(), x, y)
    assert torch.allclose(xo, norm(x))
    assert torch.equal(t, y)


def test_flip_mirrors_some_images_and_keeps_labels():
    x, y = batch()
    xo, t = run(TrainRecipe(flip=True), x, y)
    flipped = [torch.allclose(o, norm(i.flip(-1))) for o, i in zip(xo, x)]
    kept = [torch.allclose(o, norm(i)) for o, i in zip(xo, x)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert any(flipped) and any(kept)
    assert torch.equal(t, y)


def test_random_resized_crop_changes_every_image_and_keeps_shape():
    x, y = batch()
    xo, t = run(TrainRecipe(rrc=True), x, y)
    assert xo.shape == x.shape
    assert all(not torch.allclose(o, norm(i), atol=1e-3) for o, i in zip(xo, x))
    assert torch.equal(t, y)


def test_randaugment_changes_the_batch_within_range():
    x, y = batch()
    xo, t = run(TrainRecipe(randaugment=(9, 0.5)), x, y)
    assert xo.shape == x.shape and not torch.allclose(xo, norm(x))
    assert norm(torch.zeros(())) - 1e-5 <= xo.min() and xo.max() <= norm(torch.ones(())) + 1e-5
    assert torch.equal(t, y)


def test_randaugment_on_rgb_and_bad_magnitude():
    x = torch.rand(4, 3, 16, 16)
    y = torch.arange(4)
    torch.manual_seed(0)
    xo, _ = BatchAugment(TrainRecipe(randaugment=(5, 0.0)), (3, 16, 16), (0.5,) * 3, (0.25,) * 3, 4)(x, y)
    assert xo.shape == x.shape
    with pytest.raises(ValidationError, match="magnitude"):
        TrainRecipe(randaugment=(11, 0.5))


def test_erasing_fills_a_box_with_the_mean():
    x, y = batch()
    xo, t = run(TrainRecipe(erasing=0.999), x, y)
    ref = norm(x)
    for o, r in zip(xo, ref):
        changed = ~torch.isclose(o, r)
        assert changed.any()
        assert torch.all(o[changed] == 0)  # 0 after normalization = the mean
        rows, cols = changed[0].any(1).nonzero(), changed[0].any(0).nonzero()
        box = changed[0, rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.all(), "erased pixels form one rectangle"
    assert torch.equal(t, y)


@pytest.mark.parametrize("mixup,cutmix,kind", [(0.8, 0.0, "mixup"), (0.0, 1.0, "cutmix"), (0.8, 1.0, None)])
def test_mixup_cutmix_soft_targets_sum_to_one_and_match_pixels(mixup, cutmix, kind):
    # Image k is constant k/B with label k: an output image's mean is then sum_c target[c] * c/B,
    # whichever images were mixed and however, iff the soft targets are the pixel proportions.
    x = (torch.arange(B).float() / B).view(B, 1, 1, 1).expand(B, C, H, W).contiguous()
    y = torch.arange(B)
    seen = set()
    for seed in range(8):
        torch.manual_seed(seed)
        mc = MixCut(mixup, cutmix, classes=B)
        xo, t = mc(x, y)
        seen.add(mc.last)
        assert t.shape == (B, B)
        assert torch.allclose(t.sum(1), torch.ones(B))
        assert (t >= 0).all()
        assert torch.allclose(xo.mean((1, 2, 3)), t @ (torch.arange(B).float() / B), atol=1e-5)
        assert not torch.equal(xo, x)
    assert seen == ({kind} if kind else {"mixup", "cutmix"})


def test_label_smoothing_in_soft_targets():
    x, y = batch()
    torch.manual_seed(0)
    xo, t = MixCut(0.8, 0.0, classes=10, label_smoothing=0.1)(x, y)
    assert torch.allclose(t.sum(1), torch.ones(B))
    assert t.min() >= 0.1 / 10 - 1e-6


def test_soft_loss_equals_hard_loss_on_one_hot():
    logits = torch.randn(8, 10)
    y = torch.randint(0, 10, (8,))
    soft = torch.nn.functional.one_hot(y, 10).float() * 0.9 + 0.01
    assert torch.allclose(loss_fn(logits, soft), loss_fn(logits, y, label_smoothing=0.1), atol=1e-6)
