"""Pooling: maxpool{K}, avgpool{K}, gap, flatten."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import CompileError
from ..ir import Attrs, Shape

if TYPE_CHECKING:
    from torch import nn
from . import NCHW, NHWC, OpDef, padding, register, spatial


class _Pool(OpDef):
    kernel = True
    family = "pool"
    accepts = ("stride", "padding")
    shape_rule = "(C,H,W) -> (C, floor((H+2p-K)/s)+1, ...), p = `pN`, else K//2, or 0 when K == s"
    macs_rule = "0 (comparisons and additions, no multiply-accumulates)"

    def out_shape(self, a: Attrs, x: Shape) -> Shape:
        return (x[0],) + spatial(x, a.kernel, a.stride, a.padding)


@register
class MaxPool(_Pool):
    name, summary, example, module_name = "maxpool", "max over K x K windows", "maxpool3 s2", "maxpool"

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from torch import nn

        return nn.MaxPool2d(a.kernel, a.stride, padding(a.kernel, a.stride, a.padding))


@register
class AvgPool(_Pool):
    name, example, module_name = "avgpool", "avgpool2 s2", "avgpool"
    summary = ("mean over K x K windows; padding is not counted (count_include_pad=False: a border "
               "window is the mean of the values it covers, as PoolFormer's and DenseNet's pools)")

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from torch import nn

        return nn.AvgPool2d(a.kernel, a.stride, padding(a.kernel, a.stride, a.padding), count_include_pad=False)


@register
class GlobalAvgPoolOp(OpDef):
    name = "gap"
    family = "pool"
    summary = ("global average pooling: a map to a vector of its channels; inside a `gate`, "
               "a 1x1 map (C,1,1) for the gate's 1x1 convs; on tokens the mean over the tokens")
    related = ("globalavgpool", "adaptiveavgpool")
    example = "gap"
    module_name = "gap"
    layouts = (NCHW, NHWC)
    takes = "any"
    tokens = True
    shape_rule = "(C,H,W) -> (C,); in a gate (C,1,1); tokens (C,N) -> (C,)"
    macs_rule = "0"

    def check_input(self, x: Shape) -> None:
        if len(x) == 1:
            raise CompileError("E405", f"`gap` needs a feature map or tokens, got a vector of {x[0]}",
                               hint="the input is already pooled: drop `gap`")

    def out_shape(self, a: Attrs, x: Shape) -> Shape:
        return (x[0], 1, 1) if a.keepdim and len(x) == 3 else (x[0],)

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from ..modules import GlobalAvgPool

        return GlobalAvgPool(channels_last=layout == NHWC, keepdim=a.keepdim)


@register
class Flatten(OpDef):
    name = "flatten"
    family = "pool"
    summary = "a map to one vector of all its values"
    example = "flatten"
    module_name = "flatten"
    shape_rule = "(C,H,W) -> (C*H*W,)"

    def out_shape(self, a: Attrs, x: Shape) -> Shape:
        return (x[0] * x[1] * x[2],)

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from torch import nn

        return nn.Flatten(1)
