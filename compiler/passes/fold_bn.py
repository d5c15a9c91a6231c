"""Eval pass: fold a BatchNorm's running statistics and affine into the conv (or linear)
that feeds it, so the norm costs nothing at inference.

    y = (conv(x) - mean) / sqrt(var + eps) * weight + bias
      = conv'(x)  with  W' = W * s,  b' = (b - mean) * s + bias,  s = weight / sqrt(var + eps)

The conv keeps its path and gains a bias (`conv1.bias`); the norm's entries (`bn1.*`) leave
the state dict. Matched only where the norm is the conv's sole user and tracks running
statistics; any other norm is left as it is."""
from __future__ import annotations

import torch
from torch import fx, nn

from .fxutil import bypass, called_module, finish, sole_user

PAIRS = ((nn.Conv2d, nn.BatchNorm2d), (nn.Linear, nn.BatchNorm1d))


def fold_batchnorm(gm: fx.GraphModule) -> fx.GraphModule:
    for node in list(gm.graph.nodes):
        for layer_type, norm_type in PAIRS:
            layer = called_module(gm, node, layer_type)
            user = sole_user(node)
            norm = called_module(gm, user, norm_type) if layer is not None and user is not None else None
            if norm is None or norm.running_mean is None or len(user.args) != 1:
                continue
            _fold(layer, norm)
            bypass(gm, user, node)
    return finish(gm)


@torch.no_grad()
def _fold(layer: nn.Conv2d | nn.Linear, norm: nn.modules.batchnorm._BatchNorm) -> None:
    dtype = layer.weight.dtype
    scale = torch.rsqrt(norm.running_var.double() + norm.eps)
    shift = -norm.running_mean.double() * scale
    if norm.affine:
        scale, shift = scale * norm.weight.double(), shift * norm.weight.double() + norm.bias.double()
    old_bias = layer.bias.double() if layer.bias is not None else torch.zeros_like(scale)
    weight = layer.weight.double() * scale.reshape(-1, *([1] * (layer.weight.dim() - 1)))
    layer.weight = nn.Parameter(weight.to(dtype), requires_grad=layer.weight.requires_grad)
    layer.bias = nn.Parameter((old_bias * scale + shift).to(dtype), requires_grad=layer.weight.requires_grad)
