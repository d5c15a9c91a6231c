"""fx-level fusion: a channels-last pointwise conv (`nn.Linear`) whose only user is a layer
scale becomes one `scaled_linear` call, saving a pass over the activations. Parameters stay
where they are, so the state dict and module paths do not change."""
from __future__ import annotations

from torch import fx, nn

from ..modules import LayerScale, scaled_linear


def fuse_linear_layerscale(gm: fx.GraphModule) -> fx.GraphModule:
    modules = dict(gm.named_modules())
    graph = gm.graph
    for node in list(graph.nodes):
        if node.op != "call_module" or not isinstance(modules.get(node.target), nn.Linear):
            continue
        users = list(node.users)
        if len(users) != 1 or users[0].op != "call_module":
            continue
        scale = users[0]
        if not isinstance(modules[scale.target], LayerScale) or not modules[scale.target].channels_last:
            continue
        linear = modules[node.target]
        with graph.inserting_before(scale):
            weight = graph.get_attr(f"{node.target}.weight")
            bias = graph.get_attr(f"{node.target}.bias") if linear.bias is not None else None
            gamma = graph.get_attr(f"{scale.target}.gamma")
            fused = graph.call_function(scaled_linear, (node.args[0], weight, bias, gamma))
        scale.replace_all_uses_with(fused)
        graph.erase_node(scale)
        graph.erase_node(node)
    graph.lint()
    gm.recompile()
    return gm
