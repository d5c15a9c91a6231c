"""Weight initialisation schemes named by a spec's `init` line.

    trunc_normal STD   conv and linear weights ~ truncated normal(0, STD) in [-2, 2], biases 0
                       (ConvNeXt, from timm/the official code)
    kaiming fan_out    conv weights Kaiming-normal (fan_out, ReLU gain), BatchNorm 1/0
                       (torchvision ResNet); linear layers keep PyTorch's default
    default            PyTorch's own initialisation for every module
Norm layers start at weight 1, bias 0; layer scale at the value its op gives."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

SCHEMES = {"trunc_normal": "STD", "kaiming": "fan_out|fan_in", "default": ""}


def initialize(model: nn.Module, scheme: str, arg: str | float | None = None) -> None:
    import torch

    with torch.no_grad():
        _initialize(model, scheme, arg)


def _initialize(model: nn.Module, scheme: str, arg: str | float | None) -> None:
    from torch import nn

    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            if module.weight is not None:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if scheme == "trunc_normal" and isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(module.weight, std=float(arg if arg is not None else 0.02), a=-2.0, b=2.0)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif scheme == "kaiming" and isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode=str(arg or "fan_out"), nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
