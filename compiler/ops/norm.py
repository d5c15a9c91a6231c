"""Normalization: bn, ln, gn, grn."""
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
    related = ("batchnorm", "batchnorm2d", "batch_norm")
    summary = ("BatchNorm over the batch, per channel (eps 1e-5, momentum 0.1: the running statistics, "
               "buffers, move 0.1 of the way to each batch's; MobileNetV3 uses `eps=1e-3 momentum=0.01`)")
    example = "bn eps=1e-3 momentum=0.01"
    accepts = ("eps", "momentum")
    module_name = "bn"
    layouts = (NCHW, VEC)

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from torch import nn

        eps = 1e-5 if a.eps is None else a.eps
        momentum = 0.1 if a.momentum is None else a.momentum
        bn = nn.BatchNorm1d if len(x) == 1 else nn.BatchNorm2d
        return bn(x[0], eps=eps, momentum=momentum)


@register
class LayerNorm(_Norm):
    name = "ln"
    related = ("layernorm", "layer_norm")
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
    related = ("groupnorm", "group_norm")
    summary = "GroupNorm over groups of channels and space (default 32 groups, eps 1e-5)"
    example = "gn g32"
    accepts = ("groups", "eps")
    takes = "map"
    module_name = "gn"

    def _groups(self, a: Attrs, x: Shape) -> int:
        if a.group_width:  # `gwN`: N channels per group
            if x[0] % a.group_width:
                raise CompileError("E401", f"{x[0]} channels do not split into groups of {a.group_width}",
                                   hint="pick a group width that divides the channels")
            return x[0] // a.group_width
        return a.groups or 32

    def out_shape(self, a: Attrs, x: Shape) -> Shape:
        g = self._groups(a, x)
        if x[0] % g:
            raise CompileError("E401", f"{x[0]} channels do not divide into {g} groups",
                               hint="pick a number of groups that divides the channels")
        return x

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from torch import nn

        return nn.GroupNorm(self._groups(a, x), x[0], eps=1e-5 if a.eps is None else a.eps)


@register
class GlobalResponseNorm(OpDef):
    name = "grn"
    family = "norm"
    related = ("globalresponsenorm", "global_response_norm")
    replaces = ("layerscale",)     # ConvNeXt V2 drops layer scale for it
    summary = ("global response normalization (ConvNeXt V2): per channel Gx = ||X||_2 over H,W, "
               "Nx = Gx / (mean over channels of Gx + 1e-6), out = gamma*(X*Nx) + beta + X; "
               "gamma and beta start at 0; runs channels-last")
    example = "grn"
    module_name = "grn"
    layouts = (NHWC, NCHW)
    params_rule = "2*C (gamma and beta)"

    def params(self, a: Attrs, x: Shape) -> int:
        return 2 * x[0]

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from ..modules import GRN

        return GRN(x[0], channels_last=layout == NHWC)
