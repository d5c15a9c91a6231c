"""Convolutions: conv{K}, dwconv{K}, pwconv."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..errors import CompileError
from ..ir import Attrs, Shape

if TYPE_CHECKING:
    from torch import nn
from . import NCHW, NHWC, OpDef, has_bias, nearest_divisor, padding, register, spatial


class _Conv(OpDef):
    kernel = True
    family = "conv"
    shape_rule = "(C,H,W) -> (out, floor((H+2p-K)/s)+1, ...), p = `pN`, else K//2, or 0 when K == s"
    params_rule = "out*(C/g)*K*K (+ out with bias)"
    macs_rule = "out*H'*W'*(C/g)*K*K"

    def _groups(self, a: Attrs, x: Shape) -> int:
        if a.group_width:
            if x[0] % a.group_width:
                raise CompileError("E401", f"{x[0]} channels do not split into groups of {a.group_width}",
                                   hint=f"pick a group width that divides {x[0]}, e.g. "
                                   f"gw{nearest_divisor(a.group_width, x[0])}")
            return x[0] // a.group_width
        return a.groups or 1

    def _k(self, a: Attrs) -> int:
        return a.kernel

    def out_shape(self, a: Attrs, x: Shape) -> Shape:
        k, g = self._k(a), self._groups(a, x)
        out = x[0] if a.out is None else a.out  # an explicit 0 is an error, not "keep"
        if out <= 0:
            raise CompileError("E404", f"`{self.name}` has width {out}", hint="widths must be positive")
        if k % 2 == 0 and k != a.stride:
            word = f"{self.name}{k}"
            raise CompileError("E302", f"`{word}` has an even kernel: with stride {a.stride} it shifts the map "
                               "by half a pixel",
                               hint=f"kernel sizes must be odd for `{self.name}`; did you mean `{self.name}{k - 1}` "
                               f"or `{self.name}{k + 1}`? (an even kernel fits only a patchify op: `{word} s{k}`)")
        if x[0] % g or out % g:
            raise CompileError("E401", f"{x[0]} input and {out} output channels do not divide into {g} groups",
                               hint=f"pick groups that divide both, e.g. g{nearest_divisor(g, x[0], out)}")
        return (out,) + spatial(x, k, a.stride, a.padding)

    def params(self, a: Attrs, x: Shape) -> int:
        out, k = a.out or x[0], self._k(a)
        return out * (x[0] // self._groups(a, x)) * k * k + (out if has_bias(a) else 0)

    def macs(self, a: Attrs, x: Shape, y: Shape) -> int:
        k = self._k(a)
        return y[0] * y[1] * y[2] * (x[0] // self._groups(a, x)) * k * k

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from torch import nn

        k = self._k(a)
        return nn.Conv2d(x[0], a.out or x[0], k, a.stride, padding(k, a.stride, a.padding),
                         groups=self._groups(a, x), bias=has_bias(a))


@register
class Conv(_Conv):
    name = "conv"
    related = ("conv2d",)
    summary = "2-D convolution, K x K (grouped: `gG` groups, or `gwN` channels per group)"
    example = "conv3 0.25x stride g32"
    accepts = ("width", "stride", "groups", "bias", "padding")
    width_default = "dim"
    module_name = "conv"


@register
class DepthwiseConv(_Conv):
    name = "dwconv"
    related = ("depthwise", "dwconv2d")
    summary = "depthwise convolution: one K x K filter per channel (groups = channels)"
    example = "dwconv7"
    accepts = ("stride", "bias", "padding")
    module_name = "dwconv"
    params_rule = "C*K*K (+ C with bias)"
    macs_rule = "C*H'*W'*K*K"

    def _groups(self, a: Attrs, x: Shape) -> int:
        return x[0]


@register
class PointwiseConv(_Conv):
    name = "pwconv"
    related = ("pointwise", "conv1x1")
    kernel = False
    summary = "1x1 convolution; an nn.Linear over channels where the data is channels-last"
    example = "pwconv 4x"
    accepts = ("width", "stride", "bias")
    width_default = "dim"
    module_name = "pwconv"
    tokens = True
    layouts = (NCHW, NHWC)
    shape_rule = "(C,H,W) -> (out, H/s, W/s); on tokens (C,N) -> (out,N)"
    params_rule = "C*out (+ out with bias)"
    macs_rule = "C*out*H'*W' (C*out*N on tokens)"

    def _k(self, a: Attrs) -> int:
        return 1

    def out_shape(self, a: Attrs, x: Shape) -> Shape:
        if len(x) != 2:
            return super().out_shape(a, x)
        if a.stride != 1:
            raise CompileError("E405", f"`pwconv` with stride {a.stride} on a sequence of tokens",
                               hint="tokens have no grid to stride over; drop the stride")
        return (super().out_shape(a, (x[0], 1, 1))[0], x[1])

    def macs(self, a: Attrs, x: Shape, y: Shape) -> int:
        return math.prod(y) * x[0]

    def layouts_for(self, a: Attrs) -> tuple[str, ...]:
        return self.layouts if a.stride == 1 else (NCHW,)

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        if layout == NHWC:
            from ..pointwise import Linear

            return Linear(x[0], a.out or x[0], bias=has_bias(a))
        return super().module(a, x, layout)
