"""The few modules PyTorch does not ship: what `layerscale`, `droppath`, `gap`, `grn` and `tokenmlp` lower to."""
from __future__ import annotations

import torch
from torch import nn

from .pointwise import linear


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
    """(B, C, H, W) or channels-last (B, H, W, C) -> (B, C); with `keepdim` a 1x1 map in the
    same layout, which a gate's 1x1 convs read and its product broadcasts back over the map.
    Tokens (B, N, C) -> (B, C): the mean over the tokens (MLP-Mixer's head)."""

    def __init__(self, channels_last: bool, keepdim: bool = False):
        super().__init__()
        self.channels_last, self.keepdim = channels_last, keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:  # tokens
            return x.mean(1)
        return x.mean((1, 2) if self.channels_last else (2, 3), keepdim=self.keepdim)

    def extra_repr(self) -> str:
        return f"channels_last={self.channels_last}, keepdim={self.keepdim}"


class GRN(nn.Module):
    """Global response normalization (ConvNeXt V2), as the official code writes it:
    Gx = ||X||_2 over (H, W) per channel, Nx = Gx / (mean_c Gx + 1e-6),
    out = gamma * (X * Nx) + beta + X. gamma and beta have the official shape (1, 1, 1, C)
    and start at zero, so a fresh GRN is the identity. Channels-last (B, H, W, C) or NCHW."""

    def __init__(self, channels: int, channels_last: bool = True):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, channels))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, channels))
        self.channels_last = channels_last

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.gamma.zero_()
            self.beta.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            gx = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
            nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
            return self.gamma * (x * nx) + self.beta + x
        gx = torch.norm(x, p=2, dim=(2, 3), keepdim=True)
        nx = gx / (gx.mean(dim=1, keepdim=True) + 1e-6)
        gamma, beta = (p.reshape(1, -1, 1, 1) for p in (self.gamma, self.beta))
        return gamma * (x * nx) + beta + x

    def extra_repr(self) -> str:
        return f"{self.gamma.shape[-1]}, channels_last={self.channels_last}"


class TokenMLP(nn.Module):
    """An MLP across the tokens of (B, N, C): fc1 (N -> hidden), GELU, fc2 (hidden -> N), applied
    to every channel, as MLP-Mixer's `mlp_tokens` (the same names)."""

    def __init__(self, tokens: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(tokens, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x.transpose(1, 2)))).transpose(1, 2)


def scaled_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  gamma: torch.Tensor) -> torch.Tensor:
    """`linear` followed by `layerscale`, in one pass over the activations:
    gamma * (x W^T + b) == x (gamma W)^T + gamma b; scaling the small weight is cheap."""
    return linear(x, weight * gamma[:, None], None if bias is None else bias * gamma)


torch.fx.wrap("scaled_linear")
