"""Normalization: bn, ln, gn."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import CompileError
from ..ir import Attrs, Shape

if TYPE_CHECKING:
    from torch import nn
from . import NCHW, NHWC, VEC, OpDef, register


class _Norm(OpDef):
    family = "norm"
    accepts = ("eps",)
    takes = "any"
    params_rule = "2*C (weight and bias)"

    def params(self, a: Attrs, x: Shape) -> int:
        return 2 * x[0]


@register
class BatchNorm(_Norm):
    name = "bn"
    summary = "BatchNorm over the batch, per channel (eps 1e-5); running statistics are buffers"
    example = "bn"
    module_name = "bn"
    layouts = (NCHW, VEC)

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from torch import nn

        eps = 1e-5 if a.eps is None else a.eps
        return nn.BatchNorm1d(x[0], eps=eps) if len(x) == 1 else nn.BatchNorm2d(x[0], eps=eps)


@register
class LayerNorm(_Norm):
    name = "ln"
    summary = "LayerNorm over channels at each position (eps 1e-6); runs channels-last"
    example = "ln eps=1e-6"
    module_name = "norm"
    tokens = True
    layouts = (NHWC, VEC)

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from torch import nn

        return nn.LayerNorm(x[0], eps=1e-6 if a.eps is None else a.eps)


@register
class GroupNorm(_Norm):
    name = "gn"
    summary = "GroupNorm over groups of channels and space (default 32 groups, eps 1e-5)"
    example = "gn g32"
    accepts = ("groups", "eps")
    takes = "map"
    module_name = "gn"

    def out_shape(self, a: Attrs, x: Shape) -> Shape:
        g = a.groups or 32
        if x[0] % g:
            raise CompileError("E401", f"{x[0]} channels do not divide into {g} groups",
                               hint="pick a number of groups that divides the channels")
        return x

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from torch import nn

        return nn.GroupNorm(a.groups or 32, x[0], eps=1e-5 if a.eps is None else a.eps)
