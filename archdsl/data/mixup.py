"""Mixup / CutMix as timm 0.3.2's Mixup in mode 'batch' (the ConvNeXt and DeiT recipes:
mixup_alpha 0.8, cutmix_alpha 1.0, prob 1.0, switch_prob 0.5, correct_lam True, smoothing 0.1).

Per batch (timm Mixup._params_per_batch, _mix_batch):
  with probability `prob` the batch is mixed: when both alphas are on, CutMix with probability
  `switch_prob` (lam ~ Beta(cutmix_alpha, cutmix_alpha)), else Mixup (lam ~ Beta(mixup_alpha,
  mixup_alpha)); one lam for the whole batch; the partner of sample i is sample B-1-i (the
  flipped batch).
  Mixup:  x = lam * x + (1 - lam) * x.flip(0)
  CutMix: rand_bbox: r = sqrt(1 - lam), cut = (int(H r), int(W r)), centre cy ~ randint(0, H),
          cx ~ randint(0, W), box [cy - cut_h//2, cy + cut_h//2) x [cx - cut_w//2, cx + cut_w//2)
          clipped to the image, filled from the flipped batch; correct_lam: lam = 1 - box area / (H W).
  Targets: off = smoothing / K, on = 1 - smoothing + off;
          t = lam * onehot(y; on, off) + (1 - lam) * onehot(y.flip(0); on, off)  (rows sum to 1).
An unmixed batch (prob < 1) still gets the smoothed one-hot targets, as timm's lam = 1.

Randomness: torch's global CPU generator (Bernoulli draws with torch.rand, lam from
torch.distributions.Beta, the box centre with torch.randint). timm draws the same quantities
from numpy's global generator; the distributions are the same.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..lang.errors import RecipeError


@dataclass(frozen=True)
class MixInfo:
    """What the last call did: 'mixup', 'cutmix' or 'none', its (corrected) lam, and the CutMix
    box (y0, y1, x0, x1) when there is one."""

    kind: str
    lam: float
    box: tuple[int, int, int, int] | None = None


def smooth_one_hot(y: torch.Tensor, num_classes: int, smoothing: float, device=None) -> torch.Tensor:
    """timm one_hot with on = 1 - smoothing + smoothing / K, off = smoothing / K."""
    off = smoothing / num_classes
    out = torch.full((y.shape[0], num_classes), off, device=device if device is not None else y.device)
    return out.scatter_(1, y.long().view(-1, 1).to(out.device), 1.0 - smoothing + off)


def rand_bbox(height: int, width: int, lam: float) -> tuple[int, int, int, int]:
    """timm rand_bbox (margin 0): the CutMix box (y0, y1, x0, x1) for `lam`."""
    ratio = (1.0 - lam) ** 0.5
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy = int(torch.randint(0, height, ()))
    cx = int(torch.randint(0, width, ()))
    y0, y1 = min(max(cy - cut_h // 2, 0), height), min(max(cy + cut_h // 2, 0), height)
    x0, x1 = min(max(cx - cut_w // 2, 0), width), min(max(cx + cut_w // 2, 0), width)
    return y0, y1, x0, x1


class Mixup:
    def __init__(self, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0, *, num_classes: int,
                 prob: float = 1.0, switch_prob: float = 0.5, correct_lam: bool = True,
                 label_smoothing: float = 0.1):
        if mixup_alpha < 0 or cutmix_alpha < 0 or (mixup_alpha == 0 and cutmix_alpha == 0):
            raise RecipeError(f"Mixup needs alphas >= 0 with at least one > 0, got mixup={mixup_alpha}, "
                              f"cutmix={cutmix_alpha}", code="E612")
        if not (0 <= prob <= 1 and 0 <= switch_prob <= 1 and 0 <= label_smoothing < 1 and num_classes >= 2):
            raise RecipeError(f"Mixup needs prob and switch_prob in [0, 1], smoothing in [0, 1) and at "
                              f"least 2 classes; got prob={prob}, switch_prob={switch_prob}, "
                              f"smoothing={label_smoothing}, classes={num_classes}", code="E612")
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        self.prob, self.switch_prob, self.correct_lam = prob, switch_prob, correct_lam
        self.num_classes, self.label_smoothing = num_classes, label_smoothing
        self.last: MixInfo | None = None

    def __repr__(self) -> str:
        return (f"Mixup(mixup_alpha={self.mixup_alpha}, cutmix_alpha={self.cutmix_alpha}, prob={self.prob}, "
                f"switch_prob={self.switch_prob}, correct_lam={self.correct_lam}, "
                f"label_smoothing={self.label_smoothing}, mode='batch')")

    def _params(self) -> tuple[float, bool]:
        """timm _params_per_batch: (lam, use_cutmix)."""
        if not float(torch.rand(())) < self.prob:
            return 1.0, False
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            use_cutmix = float(torch.rand(())) < self.switch_prob
        else:
            use_cutmix = self.cutmix_alpha > 0
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        lam = float(torch.distributions.Beta(torch.tensor(float(alpha)), torch.tensor(float(alpha))).sample())
        return lam, use_cutmix

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix a (B, C, H, W) float batch in place; return it with (B, K) soft targets."""
        if x.shape[0] % 2:
            raise RecipeError(
                f"Mixup/CutMix needs an even batch, got {x.shape[0]} images", code="E611",
                hint="timm's Mixup pairs each image with the flipped batch and requires an even "
                     "batch size; use an even batch (and drop the last incomplete batch)")
        lam, use_cutmix = self._params()
        box = None
        if lam == 1.0:
            kind = "none"
        elif use_cutmix:
            kind = "cutmix"
            height, width = x.shape[-2:]
            y0, y1, x0, x1 = box = rand_bbox(height, width, lam)
            if self.correct_lam:
                lam = 1.0 - (y1 - y0) * (x1 - x0) / float(height * width)
            x[:, :, y0:y1, x0:x1] = x.flip(0)[:, :, y0:y1, x0:x1]
        else:
            kind = "mixup"
            partner = x.flip(0).mul_(1.0 - lam)
            x.mul_(lam).add_(partner)
        self.last = MixInfo(kind, lam, box)
        t = smooth_one_hot(y, self.num_classes, self.label_smoothing, device=x.device)
        return x, t * lam + t.flip(0) * (1.0 - lam)
