"""Random Erasing as timm 0.3.2's RandomErasing, run on a normalized batch on the training device.

Per sample, independently (timm RandomErasing._erase):
  with probability `probability`: count = min_count, or randint(min_count, max_count);
  per box, up to 10 attempts: area = U(min_area, max_area) * H*W / count,
    aspect = exp(U(log min_aspect, log max_aspect)), h = round(sqrt(area * aspect)),
    w = round(sqrt(area / aspect)); the first with w < W and h < H is kept (none: no box),
    top = randint(0, H - h), left = randint(0, W - w);
  the box is filled with N(0, 1) per pixel ('pixel'), one N(0, 1) per channel ('rand') or 0
  ('const') -- values in normalized units, so 0 is the dataset mean.
The ConvNeXt/DeiT recipe is probability 0.25, mode 'pixel', one box (max_count 1).

Where it runs: timm runs it per image in the DataLoader worker after ToTensor/Normalize; here
it runs on the batch on the training device after normalization (same distribution, each
sample independent). Randomness: box parameters from torch's global CPU generator (drawn for
the whole batch at once), the fill from the global generator of the batch's device. timm draws
the boxes from Python's `random`; the distributions are the same.
"""
from __future__ import annotations

import math

import torch

from ..lang.errors import RecipeError

MODES = ("pixel", "rand", "const")


class RandomErasing:
    def __init__(self, probability: float = 0.25, *, min_area: float = 0.02, max_area: float = 1 / 3,
                 min_aspect: float = 0.3, max_aspect: float | None = None, mode: str = "pixel",
                 min_count: int = 1, max_count: int | None = None):
        max_aspect = max_aspect or 1 / min_aspect
        max_count = max_count or min_count
        if not (0 <= probability <= 1 and 0 < min_area <= max_area <= 1 and 0 < min_aspect <= max_aspect
                and 1 <= min_count <= max_count):
            raise RecipeError(
                f"RandomErasing needs 0 <= probability <= 1, 0 < min_area <= max_area <= 1, "
                f"0 < min_aspect <= max_aspect and 1 <= min_count <= max_count; got probability="
                f"{probability}, area=({min_area}, {max_area}), aspect=({min_aspect}, {max_aspect}), "
                f"count=({min_count}, {max_count})", code="E612")
        if mode not in MODES:
            raise RecipeError(f"RandomErasing mode must be one of {', '.join(MODES)}, got {mode!r}",
                              code="E612")
        self.probability, self.mode = probability, mode
        self.area = (min_area, max_area)
        self.log_aspect = (math.log(min_aspect), math.log(max_aspect))
        self.count = (min_count, max_count)

    def __repr__(self) -> str:
        return (f"RandomErasing(probability={self.probability}, area={self.area}, "
                f"aspect=({math.exp(self.log_aspect[0]):.3g}, {math.exp(self.log_aspect[1]):.3g}), "
                f"mode={self.mode!r}, count={self.count})")

    def boxes(self, batch: int, height: int, width: int) -> list[tuple[int, int, int, int, int]]:
        """The boxes for a batch: (sample, top, left, h, w), drawn from torch's CPU generator."""
        lo, hi = self.count
        applied = torch.rand(batch) < self.probability
        counts = torch.randint(lo, hi + 1, (batch,)) if hi > lo else torch.full((batch,), lo)
        counts = torch.where(applied, counts, torch.zeros_like(counts))
        u = torch.rand(batch, hi, 10, 4, dtype=torch.float64)  # area, aspect, top, left per attempt
        area = (self.area[0] + (self.area[1] - self.area[0]) * u[..., 0]) * (height * width)
        area = area / counts.clamp(min=1).view(-1, 1, 1)
        aspect = torch.exp(self.log_aspect[0] + (self.log_aspect[1] - self.log_aspect[0]) * u[..., 1])
        h = torch.round(torch.sqrt(area * aspect)).long()  # round half to even, as Python's round
        w = torch.round(torch.sqrt(area / aspect)).long()
        ok = (w < width) & (h < height)
        first = torch.where(ok.any(-1), ok.float().argmax(-1), torch.full(ok.shape[:2], -1))
        out = []
        for i, k in (torch.arange(hi).view(1, -1) < counts.view(-1, 1)).nonzero().tolist():
            a = int(first[i, k])
            if a < 0:
                continue  # ten attempts, none fitted: no box (as timm)
            bh, bw = int(h[i, k, a]), int(w[i, k, a])
            top = min(int(u[i, k, a, 2] * (height - bh + 1)), height - bh)
            left = min(int(u[i, k, a, 3] * (width - bw + 1)), width - bw)
            out.append((i, top, left, bh, bw))
        return out

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Erase in place on a (B, C, H, W) float batch (or one (C, H, W) image); returns it."""
        if x.ndim == 3:
            return self(x.unsqueeze(0)).squeeze(0)
        if x.ndim != 4 or not x.is_floating_point():
            raise TypeError(f"RandomErasing takes a float (B, C, H, W) batch, got {tuple(x.shape)} {x.dtype}")
        _, c, height, width = x.shape
        for i, top, left, bh, bw in self.boxes(x.shape[0], height, width):
            if self.mode == "pixel":
                fill = torch.randn((c, bh, bw), dtype=x.dtype, device=x.device)
            elif self.mode == "rand":
                fill = torch.randn((c, 1, 1), dtype=x.dtype, device=x.device)
            else:
                fill = 0.0
            x[i, :, top:top + bh, left:left + bw] = fill
        return x
