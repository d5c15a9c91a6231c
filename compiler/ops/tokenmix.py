"""Token mixing: tokenmlp, an MLP across the token axis (MLP-Mixer's token-mixing MLP)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import CompileError
from ..ir import Attrs, Shape

if TYPE_CHECKING:
    from torch import nn
from . import NHWC, OpDef, register


@register
class TokenMLP(OpDef):
    name = "tokenmlp"
    family = "linear"
    related = ("tokenmixer", "token_mlp", "mlp_tokens")
    summary = ("an MLP across the tokens, the same for every channel (MLP-Mixer's token mixing): "
               "linear N -> hidden, GELU, linear hidden -> N, with biases; the width is the hidden size "
               "(`0.5x`: half the channels, as Mixer's `mlp_ratio` 0.5)")
    example = "tokenmlp 0.5x"
    accepts = ("width",)
    width_default = "dim"
    module_name = "tokenmlp"
    takes = "seq"
    layouts = (NHWC,)
    shape_rule = "(C,N) -> (C,N)"
    params_rule = "2*N*hidden + hidden + N"
    macs_rule = "2*C*N*hidden"

    def out_shape(self, a: Attrs, x: Shape) -> Shape:
        if not a.out or a.out <= 0:
            raise CompileError("E404", f"`tokenmlp` has hidden width {a.out}", hint="widths must be positive")
        return x

    def params(self, a: Attrs, x: Shape) -> int:
        return 2 * x[1] * a.out + a.out + x[1]

    def macs(self, a: Attrs, x: Shape, y: Shape) -> int:
        return 2 * x[0] * x[1] * a.out

    def detail(self, a: Attrs, x: Shape) -> str:
        return f"{x[1]} tokens -> {a.out} -> {x[1]}"

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from ..modules import TokenMLP as Module

        return Module(x[1], a.out)
