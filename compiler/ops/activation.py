"""Element-wise activations: relu, gelu, silu. They run in any layout."""
from __future__ import annotations

from torch import nn

from ..ir import Attrs, Shape
from . import NCHW, NHWC, VEC, OpDef, register


class _Activation(OpDef):
    takes = "any"
    layouts = (NCHW, NHWC, VEC)
    factory: type[nn.Module] = nn.Identity

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        return self.factory()


@register
class ReLU(_Activation):
    name, summary, example, module_name, factory = "relu", "max(x, 0)", "relu", "relu", nn.ReLU


@register
class GELU(_Activation):
    name, summary, example, module_name, factory = "gelu", "Gaussian error linear unit (exact erf form)", "gelu", "gelu", nn.GELU


@register
class SiLU(_Activation):
    name, summary, example, module_name, factory = "silu", "x * sigmoid(x) (swish)", "silu", "silu", nn.SiLU


@register
class Identity(_Activation):
    name, summary, example, module_name, factory = "identity", "passes its input through", "identity", "identity", nn.Identity
