"""Recipe options of the loop: accumulation, clipping, bf16 autocast, channels-last, EMA, and
training with the full enhanced recipe's augmentations on."""
import torch

from archdsl.training import train

TINY = {"widths": "8,16,32,64", "depths": "1,1,1,1"}


def test_accumulation_matches_the_large_batch(tmp_path):
    """Two micro-batches of 32 and one batch of 64 see the same images in the same order and
    take the same SGD steps (no drop path, no augmentation, LayerNorm only: nothing couples
    the images in a batch)."""
    common = dict(epochs=1, quiet=True, train_optimizer="sgd", train_lr=0.05, train_droppath=0,
                  train_ema=None, **TINY)
    a = train("convnext_atto", "digits", out=tmp_path / "a", train_batch=64, **common)
    b = train("convnext_atto", "digits", out=tmp_path / "b", train_batch=32, train_accumulate=2, **common)
    assert a.history[0]["step"] == b.history[0]["step"] == 22
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.allclose(sa[k], sb[k], atol=1e-5, rtol=1e-4) for k in sa)
    c = train("convnext_atto", "digits", out=tmp_path / "c", train_batch=64, train_clip_grad=1e-3, **common)
    moved = lambda r: sum((r.model.state_dict()[k] - w).abs().sum() for k, w in init.items())  # noqa: E731
    init = train("convnext_atto", "digits", out=tmp_path / "d", quiet=True, epochs=1, train_lr=0.0,
                 train_optimizer="sgd", train_droppath=0, train_ema=None, **TINY).model.state_dict()
    assert moved(c) < moved(a)  # clipping to a tiny norm slows the weights down


def test_bf16_and_channels_last_train(tmp_path):
    r = train("convnext_atto", "digits", epochs=1, out=tmp_path, quiet=True,
              train_precision="bf16", train_channels_last=True, train_lr=4e-3, **TINY)
    assert r.history[0]["val_acc"] > 0.3
    assert next(r.model.parameters()).dtype == torch.float32  # autocast, not a cast of the weights


def test_full_enhanced_recipe_runs_with_every_augmentation(tmp_path):
    r = train("convnext_atto", "digits", epochs=1, out=tmp_path, quiet=True, train_rrc=True,
              train_flip=True, train_randaugment=(9, 0.5), train_mixup=0.8, train_cutmix=1.0,
              train_erasing=0.25, **TINY)
    row = r.history[0]
    assert row["val_acc_ema"] is not None and row["train_loss"] > 0
    assert (r.recipe.mixup, r.recipe.cutmix, r.recipe.randaugment) == (0.8, 1.0, (9, 0.5))
