"""Batched augmentation with kornia, run on the training process after a batch is loaded.

A batch arrives as float (B, C, H, W) in [0, 1]. Geometric and colour ops run in that range
(RandAugment's ops assume it), then the batch is normalized, Random Erasing fills its boxes
with 0 (the mean, after normalization), and Mixup or CutMix mixes images and turns the labels
into soft targets. All of it draws from torch's global generator, which checkpoints save and
restore, so a resumed run augments exactly as an uninterrupted one would.

Targets: hard labels (B,) when no mixing is on, soft (B, classes) rows summing to 1 otherwise,
with label smoothing folded into the soft rows (smoothing is affine, so smoothing each one-hot
and then mixing equals mixing and then smoothing).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..lang.errors import RecipeError
from ..lang.recipe import TrainRecipe


def randaugment_policy(channels: int) -> list:
    """kornia's default RandAugment ops, less those that need colour on grey images."""
    from kornia.augmentation.auto.rand_augment import rand_augment

    if channels == 3:
        return list(rand_augment.default_policy)
    if channels == 1:
        return [p for p in rand_augment.default_policy if p[0][0] != "color"]
    raise RecipeError(f"randaugment needs 1 or 3 channels, the network takes {channels}",
                      code="E604")


class Normalize(nn.Module):
    """(x - mean) / std per channel."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class MixCut(nn.Module):
    """Mixup (kornia RandomMixUpV2, lambda ~ Beta(a, a)) or CutMix (kornia RandomCutMixV2,
    cut area from Beta(a, a)); with both on, each batch picks one with probability 1/2, as in
    the paper's (timm's) recipe. Returns images and soft targets."""

    def __init__(self, mixup: float, cutmix: float, classes: int, label_smoothing: float = 0.0):
        super().__init__()
        import kornia.augmentation as K

        self.mixup_alpha, self.cutmix_alpha = mixup, cutmix
        self.classes, self.smoothing = classes, label_smoothing
        self.mix = K.RandomMixUpV2(data_keys=["input", "class"]) if mixup > 0 else None
        self.cut = (K.RandomCutMixV2(beta=cutmix, use_correct_lambda=True,
                                     data_keys=["input", "class"]) if cutmix > 0 else None)
        self.last: str | None = None  # which one ran on the last batch (for tests and logs)

    def soft(self, y: torch.Tensor) -> torch.Tensor:
        s = self.smoothing
        return F.one_hot(y.long(), self.classes).float() * (1 - s) + s / self.classes

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        use_cut = self.cut is not None and (self.mix is None or bool(torch.rand(()) < 0.5))
        if use_cut:
            x, lab = self.cut(x, y)
            lab = lab[0]  # (B, 3): label, partner's label, fraction of the image kept
            keep = lab[:, 2:3]
        else:
            assert self.mix is not None
            params = self.mix.forward_parameters(x.shape)
            params["mixup_lambdas"] = torch.distributions.Beta(
                self.mixup_alpha, self.mixup_alpha).sample((x.shape[0],)).to(x.dtype)
            x, lab = self.mix(x, y, params=params)  # image = (1 - lam) x + lam partner
            keep = 1 - lab[:, 2:3]
        self.last = "cutmix" if use_cut else "mixup"
        target = keep * self.soft(lab[:, 0]) + (1 - keep) * self.soft(lab[:, 1])
        return x, target


class BatchAugment(nn.Module):
    """The recipe's training-time pipeline: crop, flip, RandAugment, normalize, erase, mix."""

    def __init__(self, recipe: TrainRecipe, shape: tuple[int, int, int], mean, std, classes: int):
        super().__init__()
        import kornia.augmentation as K
        from kornia.augmentation.auto import RandAugment

        c, h, w = shape
        ops: list[nn.Module] = []
        if recipe.rrc:
            ops.append(K.RandomResizedCrop((h, w), scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)))
        if recipe.flip:
            ops.append(K.RandomHorizontalFlip())
        if recipe.randaugment is not None:
            magnitude, noise = recipe.randaugment
            ops.append(NoisyMagnitude(RandAugment(n=2, m=magnitude * 3.0, policy=randaugment_policy(c)),
                                      magnitude, noise))
        self.geometric = nn.Sequential(*ops)
        self.normalize = Normalize(mean, std)
        self.erase = K.RandomErasing(p=recipe.erasing, value=0.0) if recipe.erasing > 0 else None
        self.mixcut = (MixCut(recipe.mixup, recipe.cutmix, classes, recipe.label_smoothing)
                       if recipe.mixup > 0 or recipe.cutmix > 0 else None)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.geometric(x).clamp_(0, 1) if len(self.geometric) else x
        x = self.normalize(x)
        if self.erase is not None:
            x = self.erase(x)
        if self.mixcut is not None:
            return self.mixcut(x, y)
        return x, y


class NoisyMagnitude(nn.Module):
    """RandAugment at magnitude M of 10 with Gaussian noise on M, as timm's `rand-m9-mstd0.5`.
    The noise is drawn once per batch (kornia applies one magnitude to a whole batch)."""

    def __init__(self, rand_augment: nn.Module, magnitude: float, std: float):
        super().__init__()
        self.rand_augment, self.magnitude, self.std = rand_augment, magnitude, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.magnitude + self.std * float(torch.randn(()))
        self.rand_augment.m = min(max(m, 0.01), 9.99) * 3.0  # kornia's magnitude runs over (0, 30)
        return self.rand_augment(x)


def loss_fn(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy against hard labels (with smoothing) or soft targets (already smoothed)."""
    logits = logits.float()
    if target.ndim == 2:
        return F.cross_entropy(logits, target)
    return F.cross_entropy(logits, target, label_smoothing=label_smoothing)
