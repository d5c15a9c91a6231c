"""The modules attention ops lower to: window attention (Swin), global self-attention (ViT),
attention with a relative-position bias over a map (CoAtNet),
tokens, a class token and its read-out, a position embedding, and Swin's patch merging.

Parameter names follow the reference code (`qkv`, `proj`, `relative_position_bias_table`,
`cls_token`, `pos_embed`) so checkpoints map one to one. Attention runs through
`F.scaled_dot_product_attention`: Swin's relative position bias and shift mask are passed as
one additive `attn_mask`. Derived tensors (the relative position index, the shift mask) are
non-persistent buffers, rebuilt by `reset_parameters` after a model built on `meta` is
materialized, and never part of the state dict.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .pointwise import Linear

SHIFT_MASK = -100.0  # what Swin adds to attention between tokens of different regions


def relative_position_index(window: int, width: int | None = None) -> torch.Tensor:
    """[N, N] index into the (2H-1)(2W-1) bias table of an H x W window (W = H unless given),
    N = H*W (Swin's construction, timm's `gen_relative_position_index`)."""
    h, w = window, width or window
    coords = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    return (rel[..., 0] + h - 1) * (2 * w - 1) + rel[..., 1] + w - 1


def shift_mask(h: int, w: int, window: int, shift: int) -> torch.Tensor:
    """[nW, N, N]: 0 between tokens that were neighbours before the cyclic shift, -100 else."""
    region = torch.zeros(h, w)
    cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for i, (rows, cols) in enumerate((r, c) for r in cuts for c in cuts):
        region[rows, cols] = i
    windows = partition(region[None, :, :, None], window).reshape(-1, window * window)
    diff = windows[:, None, :] - windows[:, :, None]
    return torch.where(diff != 0, SHIFT_MASK, 0.0)


def partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) -> (B, nW, W*W, C), windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // window) * (w // window), window * window, c)


def unpartition(x: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """(B, nW, W*W, C) -> (B, H, W, C)."""
    b, c = x.shape[0], x.shape[-1]
    x = x.view(b, h // window, w // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def _attend(qkv: nn.Linear, proj: nn.Linear, x: torch.Tensor, heads: int,
            mask: torch.Tensor | None) -> torch.Tensor:
    """Multi-head self-attention over the second-to-last axis of x (..., N, C)."""
    *lead, n, c = x.shape
    t = qkv(x).view(*lead, n, 3, heads, c // heads)
    # movedim by a non-negative axis: the TorchScript ONNX exporter writes a negative one into
    # Transpose's perm as it is, which ONNX rejects
    q, k, v = t.movedim(t.dim() - 3, 0).transpose(-2, -3).unbind(0)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (..., heads, N, d)
    return proj(y.transpose(-2, -3).reshape(*lead, n, c))


class _RelativeBias(nn.Module):
    """A relative-position bias table (trunc-normal 0.02, as Swin and timm initialise it) and
    the index buffers derived from it, rebuilt wherever the table lives."""

    def reset_parameters(self) -> None:
        if self.relative_position_bias_table.is_meta:
            return
        with torch.no_grad():
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.rebuild_buffers()

    def rebuild_buffers(self) -> None:
        raise NotImplementedError


class WindowAttention(_RelativeBias):
    """Swin's (shifted) window attention on channels-last (B, H, W, C), roll and window
    partition included, so one module is one block's `attn`."""

    def __init__(self, channels: int, heads: int, window: int, shift: int, size: tuple[int, int],
                 bias: bool = True):
        super().__init__()
        self.heads, self.window, self.shift, self.size = heads, window, shift, size
        self.qkv = Linear(channels, 3 * channels, bias=bias)
        self.proj = Linear(channels, channels)
        self.relative_position_bias_table = nn.Parameter(torch.empty((2 * window - 1) ** 2, heads))
        self.register_buffer("relative_position_index", torch.empty(window ** 2, window ** 2, dtype=torch.long),
                             persistent=False)
        self.register_buffer("attn_mask", torch.empty(0) if not shift else
                             torch.empty(size[0] * size[1] // window ** 2, window ** 2, window ** 2),
                             persistent=False)
        self.reset_parameters()

    def rebuild_buffers(self) -> None:
        """Compute the derived buffers where the parameters live (after `to_empty`, or after
        loading weights into a model built on `meta`)."""
        device = self.relative_position_bias_table.device
        self.relative_position_index = relative_position_index(self.window).to(device)
        self.attn_mask = shift_mask(*self.size, self.window, self.shift).to(device) if self.shift else \
            torch.empty(0, device=device)

    def _mask(self) -> torch.Tensor:
        n = self.window ** 2
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, self.heads).permute(2, 0, 1)  # (heads, N, N)
        return bias + self.attn_mask[:, None] if self.shift else bias  # (nW, heads, N, N)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[1:3]
        s = self.shift
        if s:
            x = torch.roll(x, (-s, -s), (1, 2))
        windows = partition(x, self.window)  # (B, nW, N, C)
        b, nw, n, c = windows.shape
        mask = self._mask().to(x.dtype)
        if self.shift:  # one mask per window: (B*nW, heads, N, N), as 4-D attention wants it
            mask = mask.expand(b, *mask.shape).reshape(b * nw, self.heads, n, n)
        else:  # (1, heads, N, N): a 3-D mask would send the CPU kernel to the math path
            mask = mask[None]
        # 4-D (B*nW, heads, N, d) runs the fused CPU kernel; 5-D would fall back to the math path
        y = _attend(self.qkv, self.proj, windows.reshape(b * nw, n, c), self.heads, mask)
        y = unpartition(y.view(b, nw, n, c), self.window, h, w)
        return torch.roll(y, (s, s), (1, 2)) if s else y

    def extra_repr(self) -> str:
        return f"heads={self.heads}, window={self.window}, shift={self.shift}"


class SelfAttention(nn.Module):
    """Global multi-head self-attention (ViT) on tokens (B, N, C) or a channels-last map."""

    def __init__(self, channels: int, heads: int, bias: bool = True):
        super().__init__()
        self.heads = heads
        self.qkv = Linear(channels, 3 * channels, bias=bias)
        self.proj = Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:  # (B, H, W, C)
            return _attend(self.qkv, self.proj, x.flatten(1, 2), self.heads, None).view(x.shape)
        return _attend(self.qkv, self.proj, x, self.heads, None)

    def extra_repr(self) -> str:
        return f"heads={self.heads}"


class Tokens(nn.Module):
    """Channels-last map (B, H, W, C) -> tokens (B, H*W, C), row-major as ViT's flatten."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1, 2)


class ClassToken(nn.Module):
    """Prepends a learned class token: (B, N, C) -> (B, 1+N, C)."""

    def __init__(self, channels: int):
        super().__init__()
        self.cls_token = nn.Parameter(torch.empty(1, 1, channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if not self.cls_token.is_meta:
            with torch.no_grad():
                nn.init.normal_(self.cls_token, std=1e-6)  # timm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)


class ClassPool(nn.Module):
    """(B, N, C) -> (B, C): the class token, the first."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0]


class PositionEmbedding(nn.Module):
    """Adds a learned embedding per token position: (B, N, C) + (1, N, C)."""

    def __init__(self, tokens: int, channels: int):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.empty(1, tokens, channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if not self.pos_embed.is_meta:
            with torch.no_grad():
                nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pos_embed


class PatchMerge(nn.Module):
    """Swin's patch merging, the rearrangement only: each 2x2 neighbourhood's channels side
    by side, (B, H, W, C) -> (B, H/2, W/2, 4C), in Swin's order x[0::2, 0::2], x[1::2, 0::2],
    x[0::2, 1::2], x[1::2, 1::2]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]), dim=-1)


class RelPosAttention2d(_RelativeBias):
    """CoAtNet's attention on an NCHW map (timm's Attention2d with RelPosBias): an optional sxs
    average pool, qkv as a 1x1 conv whose output channels are grouped per head ([q, k, v] of head
    0, then head 1, ...), attention over every position with a learned relative-position bias
    added to the logits, and a 1x1 conv projection. `dim_out` sets the attention's and the output's
    width, which may differ from the input's."""

    def __init__(self, dim: int, dim_out: int, heads: int, size: tuple[int, int], stride: int = 1,
                 bias: bool = True):
        super().__init__()
        self.heads, self.size, self.stride = heads, size, stride
        self.pool = nn.AvgPool2d(stride, stride) if stride > 1 else nn.Identity()
        self.qkv = nn.Conv2d(dim, 3 * dim_out, 1, bias=bias)
        self.proj = nn.Conv2d(dim_out, dim_out, 1, bias=bias)
        self.relative_position_bias_table = nn.Parameter(torch.empty((2 * size[0] - 1) * (2 * size[1] - 1), heads))
        n = size[0] * size[1]
        self.register_buffer("relative_position_index", torch.empty(n, n, dtype=torch.long), persistent=False)
        self.reset_parameters()

    def rebuild_buffers(self) -> None:
        device = self.relative_position_bias_table.device
        self.relative_position_index = relative_position_index(*self.size).to(device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        b, _, h, w = x.shape
        n = h * w
        q, k, v = self.qkv(x).view(b, self.heads, -1, n).chunk(3, dim=2)  # (B, heads, d, N) each
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, self.heads).permute(2, 0, 1)[None].to(x.dtype)  # (1, heads, N, N)
        y = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2),
                                           attn_mask=bias)  # (B, heads, N, d)
        return self.proj(y.transpose(-1, -2).reshape(b, -1, h, w))
