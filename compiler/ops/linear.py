"""Fully connected: linear."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import CompileError
from ..ir import Attrs, Shape

if TYPE_CHECKING:
    from torch import nn
from . import VEC, OpDef, register


@register
class Linear(OpDef):
    name = "linear"
    related = ("fc", "dense")
    family = "linear"
    summary = "fully connected layer on a vector; no width means `classes`"
    example = "linear"
    accepts = ("width", "bias")
    width_default = "classes"
    module_name = "fc"
    takes = "vec"
    layouts = (VEC,)
    shape_rule = "(C,) -> (out,)"
    params_rule = "C*out + out (no bias with `nobias`)"
    macs_rule = "C*out"

    def out_shape(self, a: Attrs, x: Shape) -> Shape:
        if not a.out or a.out <= 0:
            raise CompileError("E404", f"`linear` has width {a.out}", hint="widths must be positive")
        return (a.out,)

    def params(self, a: Attrs, x: Shape) -> int:
        return x[0] * a.out + (a.out if a.bias is not False else 0)

    def macs(self, a: Attrs, x: Shape, y: Shape) -> int:
        return x[0] * a.out

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from .. import pointwise

        return pointwise.Linear(x[0], a.out, bias=a.bias is not False)
