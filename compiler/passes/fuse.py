"""fx-level fusion: a channels-last pointwise conv (`nn.Linear`) whose only user is a layer
scale becomes one `scaled_linear` call, saving a pass over the activations. Parameters stay
where they are, so the state dict and module paths do not change."""
from __future__ import annotations

from torch import fx, nn

from ..modules import LayerScale, scaled_linear
from .fxutil import called_module, finish, sole_user


def fuse_linear_layerscale(gm: fx.GraphModule) -> fx.GraphModule:
    graph = gm.graph
    for node in list(graph.nodes):
        linear = called_module(gm, node, nn.Linear)
        user = sole_user(node)
        scale = called_module(gm, user, LayerScale) if linear is not None and user is not None else None
        if scale is None or not scale.channels_last:
            continue
        with graph.inserting_before(user):
            weight = graph.get_attr(f"{node.target}.weight")
            bias = graph.get_attr(f"{node.target}.bias") if linear.bias is not None else None
            gamma = graph.get_attr(f"{user.target}.gamma")
            fused = graph.call_function(scaled_linear, (node.args[0], weight, bias, gamma))
        user.replace_all_uses_with(fused)
        graph.erase_node(user)
        graph.erase_node(node)
    return finish(gm)
