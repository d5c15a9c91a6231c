"""Eval pass: fold a layer scale into the weights of the linear (or conv) that feeds it, once,
instead of scaling activations (or, as the train build's `scaled_linear` does, the weights)
on every call:  gamma * (x W^T + b) == x (gamma W)^T + gamma b.

The linear keeps its path; the scale's `gamma` leaves the state dict. Matched only where the
scale is the layer's sole user and its channel axis is the layer's output axis, or where the
train build already fused the pair into a `scaled_linear(x, weight, bias, gamma)` call."""
from __future__ import annotations

import torch
from torch import fx, nn

from ..modules import LayerScale, scaled_linear
from .fxutil import bypass, called_module, finish, sole_user


def fold_layerscale(gm: fx.GraphModule) -> fx.GraphModule:
    for node in list(gm.graph.nodes):
        if node.op == "call_function" and node.target is scaled_linear:
            _unfuse(gm, node)
    for node in list(gm.graph.nodes):
        layer = called_module(gm, node, (nn.Linear, nn.Conv2d))
        user = sole_user(node)
        scale = called_module(gm, user, LayerScale) if layer is not None and user is not None else None
        if scale is None or scale.channels_last != isinstance(layer, nn.Linear):
            continue
        _fold(layer, scale.gamma)
        bypass(gm, user, node)
    return finish(gm)


@torch.no_grad()
def _fold(layer: nn.Linear | nn.Conv2d, gamma: torch.Tensor) -> None:
    shape = (-1, *([1] * (layer.weight.dim() - 1)))
    layer.weight.mul_(gamma.reshape(shape).to(layer.weight.dtype))
    if layer.bias is not None:
        layer.bias.mul_(gamma.to(layer.bias.dtype))


def _unfuse(gm: fx.GraphModule, node: fx.Node) -> None:
    """scaled_linear(x, <path>.weight, <path>.bias, <scale>.gamma) -> call <path> with gamma folded in."""
    x, weight, bias, gamma = node.args
    if not all(isinstance(a, fx.Node) and a.op == "get_attr" for a in (weight, gamma)):
        return
    path, scale_path = weight.target.rsplit(".", 1)[0], gamma.target.rsplit(".", 1)[0]
    layer, scale = gm.get_submodule(path), gm.get_submodule(scale_path)
    if not isinstance(layer, nn.Linear) or not isinstance(scale, LayerScale) or weight.target != f"{path}.weight":
        return
    _fold(layer, scale.gamma)
    with gm.graph.inserting_before(node):
        call = gm.graph.call_module(path, (x,))
    call.meta = dict(node.meta)
    node.replace_all_uses_with(call)
    gm.graph.erase_node(node)
    for attr in (weight, bias, gamma):
        if isinstance(attr, fx.Node) and not attr.users:
            gm.graph.erase_node(attr)
    gm.delete_submodule(scale_path)
