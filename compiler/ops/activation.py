"""Element-wise activations: relu, gelu, silu. They run in any layout."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..ir import Attrs, Shape

if TYPE_CHECKING:
    from torch import nn
from . import NCHW, NHWC, VEC, OpDef, register


class _Activation(OpDef):
    family = "act"
    takes = "any"
    tokens = True
    layouts = (NCHW, NHWC, VEC)
    factory = "Identity"  # the torch.nn class it lowers to

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from torch import nn

        return getattr(nn, self.factory)()


@register
class ReLU(_Activation):
    name, summary, example, module_name, factory = "relu", "max(x, 0)", "relu", "relu", "ReLU"


@register
class GELU(_Activation):
    name, summary, example, module_name, factory = "gelu", "Gaussian error linear unit (exact erf form)", "gelu", "gelu", "GELU"


@register
class SiLU(_Activation):
    name, summary, example, module_name, factory = "silu", "x * sigmoid(x) (swish)", "silu", "silu", "SiLU"


@register
class Identity(_Activation):
    name, summary, example, module_name, factory = "identity", "passes its input through", "identity", "identity", "Identity"
