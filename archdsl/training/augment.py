"""The batch stage, on the training device: what runs after a uint8 batch leaves the loader.

    x = x.float() / 255 -> (x - mean) / std -> Random Erasing -> Mixup/CutMix

The per-image steps of the recipe (RandomResizedCrop on the original image, flip, RandAugment,
colour jitter) run earlier, in the DataLoader workers (archdsl.data.transforms). Random Erasing
(timm's, `pixel` mode by default: per-pixel normal noise in normalized units) and Mixup/CutMix
(timm's `mode='batch'`: one lambda per batch, partners from the flipped batch, label smoothing
folded into the targets) are archdsl.data's; both draw from torch's global generators, which
checkpoints save and restore, so a resumed run augments exactly as an uninterrupted one would.

Targets: hard labels (B,) when no mixing is on, soft (B, classes) rows summing to 1 otherwise.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.erasing import RandomErasing
from ..data.mixup import Mixup
from ..lang.recipe import TrainRecipe


class Normalize(nn.Module):
    """uint8 or [0, 1] float images -> (x - mean) / std per channel."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        return (x - self.mean) / self.std


class BatchStage(nn.Module):
    """The recipe's batch-level steps: normalize, erase, mix."""

    def __init__(self, recipe: TrainRecipe, mean, std, classes: int):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.erase = (RandomErasing(recipe.erasing, mode=recipe.erasing_mode, max_count=1)
                      if recipe.erasing > 0 else None)
        self.mix = (Mixup(recipe.mixup, recipe.cutmix, num_classes=classes,
                          label_smoothing=recipe.label_smoothing)
                    if recipe.mixup > 0 or recipe.cutmix > 0 else None)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.normalize(x)
        if self.erase is not None:
            x = self.erase(x)
        if self.mix is not None:
            if x.shape[0] % 2:  # a batch that lost an image to a skipped bad file: pairs need an even one
                x, y = x[:-1], y[:-1]
            return self.mix(x, y)
        return x, y


def loss_fn(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy against hard labels (with smoothing) or soft targets (already smoothed)."""
    logits = logits.float()
    if target.ndim == 2:
        return F.cross_entropy(logits, target)
    return F.cross_entropy(logits, target, label_smoothing=label_smoothing)
