"""Element-wise activations: relu, relu6, gelu, silu, sigmoid, tanh, hardsigmoid, hardswish. They run in any layout."""
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

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.example = cls.module_name = cls.name  # an activation is written, and named, as itself

    def module(self, a: Attrs, x: Shape, layout: str) -> nn.Module:
        from torch import nn

        return getattr(nn, self.factory)()


@register
class ReLU(_Activation):
    name, summary, factory = "relu", "max(x, 0)", "ReLU"


@register
class ReLU6(_Activation):
    name, summary, factory = "relu6", "min(max(x, 0), 6) (MobileNet)", "ReLU6"
    related = ("relu_6",)


@register
class Sigmoid(_Activation):
    name, summary, factory = "sigmoid", "1 / (1 + exp(-x)); a gate's last op", "Sigmoid"


@register
class Tanh(_Activation):
    name, summary, factory = "tanh", "hyperbolic tangent, (exp(x) - exp(-x)) / (exp(x) + exp(-x))", "Tanh"


@register
class HardSigmoid(_Activation):
    name, summary, factory = "hardsigmoid", "relu6(x + 3) / 6 (MobileNetV3's gate)", "Hardsigmoid"
    related = ("hsigmoid", "hard_sigmoid")


@register
class HardSwish(_Activation):
    name, summary, factory = "hardswish", "x * relu6(x + 3) / 6 (MobileNetV3)", "Hardswish"
    related = ("hswish", "hard_swish")


@register
class GELU(_Activation):
    name, summary, factory = "gelu", "Gaussian error linear unit (exact erf form)", "GELU"


@register
class SiLU(_Activation):
    name, summary, factory = "silu", "x * sigmoid(x) (swish)", "SiLU"
    related = ("swish",)


@register
class Identity(_Activation):
    name, summary, factory = "identity", "passes its input through", "Identity"
