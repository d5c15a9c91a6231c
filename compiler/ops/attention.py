"""Attention and tokens: wattn{W}, mhsa, relattn, tokens, clstoken, posembed, clspool, merge.

Attention MACs count the qkv and output projections (4*T*C^2 over T tokens) and the two
attention matmuls, Q K^T and A V (2*T*N*C, N the tokens one token attends to: its window,
or all T). Softmax, bias and mask additions are not multiply-accumulates. This is what
`FlopCounterMode` counts on the math path of `scaled_dot_product_attention`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import CompileError
from ..ir import Attrs, Shape

if TYPE_CHECKING:
    from torch import nn
from . import NCHW, NHWC, OpDef, has_bias, nearest_divisor, register


def heads(op: str, a: Attrs, c: int) -> int:
    """Heads for a width of c: `hN` as given, `dN` as c / N, one head by default."""
    if a.head_dim is not None:
        if c % a.head_dim:
            raise CompileError("E401", f"{c} channels do not divide into heads of {a.head_dim} channels "
                               f"(`{op}` with `d{a.head_dim}`)",
                               hint=f"pick a head dim that divides {c}, e.g. "
                               f"`d{nearest_divisor(a.head_dim, c)}`, or a width that is a "
                               f"multiple of {a.head_dim}")
        return c // a.head_dim
    h = a.heads or 1
    if c % h:
        raise CompileError("E401", f"{c} channels do not divide into {h} heads (`{op}` with `h{h}`)",
                           hint=f"pick heads that divide {c}, e.g. `h{nearest_divisor(h, c)}`, "
                           "or give a head dim (`d32`) so the heads follow the width")
    return h


def _attention_macs(tokens: int, seen: int, c: int) -> int:
    return 4 * tokens * c * c + 2 * tokens * seen * c


class _Attention(OpDef):
    family = "attn"
    accepts = ("heads", "headdim", "bias")
    module_name = "attn"
    layouts = (NHWC,)
    params_rule = "4*C*C + 4*C (qkv and proj, with biases)"

    def out_shape(self, a: Attrs, x: Shape) -> Shape:
        heads(self.name, a, x[0])
        return x

    def params(self, a: Attrs, x: Shape) -> int:
        c = x[0]
        return 4 * c * c + (3 * c if has_bias(a) else 0) + c


@register
class WindowAttentionOp(_Attention):
    name = "wattn"
    kernel = True
    accepts = ("heads", "headdim", "shift", "bias")
    summary = ("Swin's window multi-head self-attention over W x W windows with a learned relative position "
               "bias ((2W-1)^2 x heads); `shift` shifts the windows by W/2 on every other block of a stage "
               "(odd block indices) with Swin's -100 mask; on a map no larger than W the window is the map "
               "and there is no shift")
    example = "wattn7 d32 shift"
    shape_rule = "(C,H,W) -> (C,H,W); H and W multiples of the window"
    params_rule = "4*C*C + 4*C + (2W-1)^2*heads"
    macs_rule = "4*H*W*C*C + 2*H*W*W'*W'*C (W' the window used)"

    def window(self, a: Attrs, x: Shape) -> tuple[int, int]:
        """(window, shift size) Swin uses on the map: the window shrinks to the map, with no
        shift, when the map is no larger than it (as the reference implementation does)."""
        h, w = x[1], x[2]
        if min(h, w) <= a.kernel:
            return min(h, w), 0
        return a.kernel, (a.kernel // 2 if a.shift else 0)

    def tiles(self, a: Attrs, x: Shape) -> bool:
        win, _ = self.window(a, x)
        return x[1] % win == 0 and x[2] % win == 0

    def out_shape(self, a: Attrs, x: Shape) -> Shape:
        heads(self.name, a, x[0])
        if not self.tiles(a, x):
            rehint = lambda maps: self.windows_hint(a, maps)  # noqa: E731
            raise CompileError("E407", f"the {x[1]}x{x[2]} map does not divide into {a.kernel}x{a.kernel} windows",
                               hint=rehint([x]), goes_on=x, rehint=rehint)
        return x

    def windows_hint(self, a: Attrs, maps: list[Shape]) -> str:
        """The windows to suggest for every map the op meets (each stage's, where a block runs
        in several). Preferred: the largest window that tiles them all and is no larger than
        the smallest, so every stage has windows and the last is at most one, as Swin is made:
        7 at 224 (maps 56..7), 12 at 384 (96..12). Where no such window exists (a small input
        whose last maps are smaller than any window), the tiling window nearest the op's own
        that still windows the largest map. Then the nearest other window that tiles."""
        maps = list(dict.fromkeys(tuple(m) for m in maps))
        sizes = [s for m in maps for s in m[1:]]
        fits = [k for k in range(2, max(sizes) + 1) if all(self.tiles(a.with_(kernel=k), m) for m in maps)]
        shown = ", ".join(f"{m[1]}x{m[2]}" for m in maps)
        advice = f"an input whose maps are multiples of {a.kernel}"
        if not fits:
            return f"windows must tile every map `wattn{a.kernel}` meets here ({shown}): use {advice}"
        near = lambda ks: min(ks, key=lambda k: (abs(k - a.kernel), -k))  # noqa: E731
        windowed = [k for k in fits if k < max(sizes)] or fits
        best = max((k for k in windowed if k <= min(sizes)), default=None) or near(windowed)
        other = [k for k in fits if k != best]
        return (f"windows must tile every map `wattn{a.kernel}` meets here ({shown}): `wattn{best}` does "
                f"(on the command line `--set BLOCK.wattn.kernel={best}`)"
                + (f", as does `wattn{near(other)}`" if other else "") + f"; or use {advice}")

    def detail(self, a: Attrs, x: Shape) -> str:
        win, shift = self.window(a, x)
        where = " (the map: no shift)" if min(x[1], x[2]) <= a.kernel else f", shift {shift}" if shift else ""
        return f"{win}x{win} windows{where}, {heads(self.name, a, x[0])} heads"

    def params(self, a: Attrs, x: Shape) -> int:
        win, _ = self.window(a, x)
        return super().params(a, x) + (2 * win - 1) ** 2 * heads(self.name, a, x[0])

    def macs(self, a: Attrs, x: Shape, y: Shape) -> int:
        win, _ = self.window(a, x)
        return _attention_macs(x[1] * x[2], win * win, x[0])

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from ..attention_modules import WindowAttention

        win, shift = self.window(a, x)
        return WindowAttention(x[0], heads(self.name, a, x[0]), win, shift, (x[1], x[2]), has_bias(a))


@register
class SelfAttentionOp(_Attention):
    name = "mhsa"
    takes = "any"
    tokens = True
    summary = "global multi-head self-attention (ViT): every token attends to every token"
    example = "mhsa d64"
    shape_rule = "(C,N) -> (C,N); on a map every position is a token"
    macs_rule = "4*T*C*C + 2*T*T*C (T tokens: N, or H*W)"

    def check_input(self, x: Shape) -> None:
        if len(x) == 1:
            raise CompileError("E405", f"`mhsa` needs tokens or a feature map, got a vector of {x[0]}",
                               hint="attend before the op that reduced the tokens to a vector")

    def detail(self, a: Attrs, x: Shape) -> str:
        return f"{heads(self.name, a, x[0])} heads over {x[1] if len(x) == 2 else x[1] * x[2]} tokens"

    def macs(self, a: Attrs, x: Shape, y: Shape) -> int:
        t = x[1] if len(x) == 2 else x[1] * x[2]
        return _attention_macs(t, t, x[0])

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from ..attention_modules import SelfAttention

        return SelfAttention(x[0], heads(self.name, a, x[0]), has_bias(a))


@register
class RelPosAttentionOp(_Attention):
    name = "relattn"
    related = ("attention2d", "relpos", "coatnet")
    summary = ("multi-head self-attention over a map's positions with a learned relative-position bias "
               "(CoAtNet's Attention2d with timm's RelPosBias): qkv and proj are 1x1 convs, qkv's channels "
               "grouped per head (q, k, v of head 0, then head 1, ...); the width is the output's and the "
               "attention's (it may differ from the input's); `stride` or `sN` first average-pools sxs "
               "windows (CoAtNet's downsampling block: pool before attention, its shortcut `avgpool2 "
               "stride, conv1`)")
    example = "relattn 2x d32 stride"
    accepts = ("width", "stride", "heads", "headdim", "bias")
    width_default = "dim"
    shape_rule = "(C,H,W) -> (out, H/s, W/s)"
    params_rule = "3*C*out + out*out + 4*out (qkv, proj; biases unless `nobias`) + (2H'-1)(2W'-1)*heads (the bias table)"
    macs_rule = "3*T*C*out + T*out*out + 2*T*T*out (T = H'*W' positions after the pool)"

    def out_shape(self, a: Attrs, x: Shape) -> Shape:
        out = a.out or x[0]
        heads(self.name, a, out)
        h, w = x[1] // a.stride, x[2] // a.stride
        if h < 1 or w < 1 or x[1] % a.stride or x[2] % a.stride:
            raise CompileError("E402", f"`relattn` with stride {a.stride} on a {x[1]}x{x[2]} map: the "
                               "pool's windows do not tile it", hint="use an input whose size the strides divide")
        return (out, h, w)

    def params(self, a: Attrs, x: Shape) -> int:
        c, d = x[0], a.out or x[0]
        h, w = x[1] // a.stride, x[2] // a.stride
        bias = 4 * d if has_bias(a) else 0  # qkv's and proj's (timm's `attn_bias` is both)
        return 3 * c * d + d * d + bias + (2 * h - 1) * (2 * w - 1) * heads(self.name, a, d)

    def macs(self, a: Attrs, x: Shape, y: Shape) -> int:
        t, d = y[1] * y[2], y[0]
        return 3 * t * x[0] * d + t * d * d + 2 * t * t * d

    def detail(self, a: Attrs, x: Shape) -> str:
        d = a.out or x[0]
        return f"{heads(self.name, a, d)} heads over {(x[1] // a.stride) * (x[2] // a.stride)} positions"

    def layouts_for(self, a: Attrs) -> tuple[str, ...]:
        return (NCHW,)

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from ..attention_modules import RelPosAttention2d

        d = a.out or x[0]
        return RelPosAttention2d(x[0], d, heads(self.name, a, d), (x[1] // a.stride, x[2] // a.stride),
                                 a.stride, has_bias(a))


@register
class TokensOp(OpDef):
    name = "tokens"
    family = "reshape"
    summary = "a feature map to a sequence of tokens, one per position, row by row (ViT's flatten)"
    example = "tokens"
    module_name = "tokens"
    layouts = (NHWC,)
    shape_rule = "(C,H,W) -> (C,H*W)"

    def out_shape(self, a: Attrs, x: Shape) -> Shape:
        return (x[0], x[1] * x[2])

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from ..attention_modules import Tokens

        return Tokens()


@register
class ClassTokenOp(OpDef):
    name = "clstoken"
    family = "token"
    summary = "prepends a learned class token to a sequence (once, outside the blocks)"
    example = "clstoken"
    module_name = "cls"
    takes = "seq"
    layouts = (NHWC,)
    shape_rule = "(C,N) -> (C,N+1)"
    params_rule = "C"

    def out_shape(self, a: Attrs, x: Shape) -> Shape:
        return (x[0], x[1] + 1)

    def params(self, a: Attrs, x: Shape) -> int:
        return x[0]

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from ..attention_modules import ClassToken

        return ClassToken(x[0])


@register
class PositionEmbeddingOp(OpDef):
    name = "posembed"
    family = "token"
    summary = ("adds a learned embedding per token position; its length is the sequence's at the spec's "
               "input (a checkpoint made at another input is resampled onto its grid: see load_weights)")
    example = "posembed"
    module_name = "pos"
    takes = "seq"
    layouts = (NHWC,)
    params_rule = "N*C"

    def params(self, a: Attrs, x: Shape) -> int:
        return x[0] * x[1]

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from ..attention_modules import PositionEmbedding

        return PositionEmbedding(x[1], x[0])


@register
class ClassPoolOp(OpDef):
    name = "clspool"
    family = "pool"
    summary = "reads the class token: a sequence to the vector of its first token"
    example = "clspool"
    module_name = "clspool"
    takes = "seq"
    layouts = (NHWC,)
    shape_rule = "(C,N) -> (C,)"

    def out_shape(self, a: Attrs, x: Shape) -> Shape:
        return (x[0],)

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from ..attention_modules import ClassPool

        return ClassPool()


@register
class PatchMergeOp(OpDef):
    name = "merge"
    family = "reshape"
    summary = ("Swin's patch merging: each 2x2 neighbourhood's channels side by side (x[0::2,0::2], "
               "x[1::2,0::2], x[0::2,1::2], x[1::2,1::2]); `merge, ln, pwconv nobias` is Swin's downsample")
    example = "merge"
    module_name = "merge"
    layouts = (NHWC,)
    shape_rule = "(C,H,W) -> (4C,H/2,W/2); H and W even"

    def out_shape(self, a: Attrs, x: Shape) -> Shape:
        if x[1] % 2 or x[2] % 2:
            raise CompileError("E407", f"`merge` needs an even map, got {x[1]}x{x[2]}",
                               hint="2x2 neighbourhoods must tile the map: use an input whose map here is even")
        return (4 * x[0], x[1] // 2, x[2] // 2)

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from ..attention_modules import PatchMerge

        return PatchMerge()
