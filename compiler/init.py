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


def rebuild_buffers(model: nn.Module) -> None:
    """Compute the buffers no state dict holds (Swin's relative-position index and shift
    mask), for a model whose weights were loaded instead of initialised."""
    for module in model.modules():
        if hasattr(module, "rebuild_buffers"):
            module.rebuild_buffers()


def _initialize(model: nn.Module, scheme: str, arg: str | float | None) -> None:
    """Sets every parameter and buffer, so the model may be built on `meta` and moved with
    `to_empty` first: each weight is initialised once."""
    from torch import nn

    for module in model.modules():
        if scheme == "trunc_normal" and isinstance(module, (nn.Conv2d, nn.Linear)):
            _trunc_normal(module.weight, float(arg if arg is not None else 0.02))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif scheme == "kaiming" and isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode=str(arg or "fan_out"), nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif hasattr(module, "reset_parameters"):
            module.reset_parameters()  # PyTorch's default; norms 1/0 and fresh running stats


def _trunc_normal(weight, std: float, bound: float = 2.0) -> None:
    """Normal(0, std) truncated to [-bound, bound], as timm and the official ConvNeXt do.
    With std 0.02 the bound sits 100 sigma out and is never reached, so a clamped normal is
    the same distribution and several times faster than rejection sampling."""
    from torch import nn

    if bound / std > 6.0:
        weight.normal_(0.0, std).clamp_(-bound, bound)
    else:
        nn.init.trunc_normal_(weight, std=std, a=-bound, b=bound)
