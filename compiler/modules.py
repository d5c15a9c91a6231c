"""The few modules PyTorch does not ship: what `layerscale`, `droppath` and `gap` lower to."""
from __future__ import annotations

import torch
from torch import nn


class LayerScale(nn.Module):
    """Per-channel scale `gamma` (shape [C]), on channels-last (..., C) or NCHW data."""

    def __init__(self, channels: int, init: float, channels_last: bool):
        super().__init__()
        self.init = float(init)
        self.gamma = nn.Parameter(torch.full((channels,), self.init))
        self.channels_last = channels_last

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.gamma.fill_(self.init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            return x * self.gamma
        return x * self.gamma[:, None, None]

    def extra_repr(self) -> str:
        return f"{self.gamma.shape[0]}, channels_last={self.channels_last}"


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample with probability `p`,
    scaling kept samples by 1/(1-p). Identity in eval mode or when p == 0."""

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p:.4g}"


class GlobalAvgPool(nn.Module):
    """(B, C, H, W) or channels-last (B, H, W, C) -> (B, C)."""

    def __init__(self, channels_last: bool):
        super().__init__()
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((1, 2)) if self.channels_last else x.mean((2, 3))


def scaled_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  gamma: torch.Tensor) -> torch.Tensor:
    """`linear` followed by `layerscale`, in one pass over the activations:
    gamma * (x W^T + b) == x (gamma W)^T + gamma b; scaling the small weight is cheap."""
    return nn.functional.linear(x, weight * gamma[:, None], None if bias is None else bias * gamma)


torch.fx.wrap("scaled_linear")
