"""Regularizers and scales: layerscale, droppath, dropout. They run in any layout."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import CompileError
from ..ir import Attrs, Shape

if TYPE_CHECKING:
    from torch import nn
from . import NCHW, NHWC, VEC, OpDef, register


class _Elementwise(OpDef):
    takes = "any"
    tokens = True
    layouts = (NCHW, NHWC, VEC)


@register
class LayerScaleOp(_Elementwise):
    name = "layerscale"
    family = "scale"
    summary = "learnable per-channel scale `gamma`, initialised to the given value"
    example = "layerscale 1e-6"
    accepts = ("value",)
    needs_value = True
    module_name = "layerscale"
    params_rule = "C"

    def params(self, a: Attrs, x: Shape) -> int:
        return x[0]

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from ..modules import LayerScale

        return LayerScale(x[0], a.value, channels_last=layout != NCHW)


@register
class DropPathOp(_Elementwise):
    name = "droppath"
    family = "drop"
    summary = ("stochastic depth inside a residual: drops the branch per sample; the rate grows "
               "linearly over all blocks up to the recipe's `droppath` (or a fixed rate if given)")
    example = "droppath"
    accepts = ("value",)
    module_name = "droppath"

    def out_shape(self, a: Attrs, x: Shape) -> Shape:
        if a.value is not None and not 0.0 <= a.value < 1.0:
            raise CompileError("E305", f"drop-path rate {a.value} is not in [0, 1)")
        return x

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from ..modules import DropPath

        return DropPath(a.value or 0.0)


@register
class Dropout(_Elementwise):
    name = "dropout"
    family = "drop"
    summary = "element-wise dropout with probability P"
    example = "dropout 0.5"
    accepts = ("value",)
    needs_value = True
    module_name = "dropout"

    def out_shape(self, a: Attrs, x: Shape) -> Shape:
        if not 0.0 <= a.value < 1.0:
            raise CompileError("E305", f"dropout probability {a.value} is not in [0, 1)")
        return x

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from torch import nn

        return nn.Dropout(a.value)
