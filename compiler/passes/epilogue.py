"""Eval pass: run each linear and conv with its epilogue fused, through oneDNN's pointwise
kernels (the ones inductor's freezing emits), instead of separate passes over the output:

    linear [-> act]            mkldnn._linear_pointwise (bias added in the GEMM, no copy)
    linear -> add(·, r)        mkldnn._linear_pointwise.binary      (ConvNeXt's pwconv2 + residual)
    linear -> permute to NCHW -> add(·, r)
                               the same, on r permuted to NHWC (a view), permuted back after
    conv -> act                mkldnn._convolution_pointwise
    conv -> add(·, r) [-> relu] mkldnn._convolution_pointwise.binary (ResNet's conv3 + shortcut + relu)

The layers keep their modules and parameters (the state dict does not change); the graph
reads their weights with `get_attr` and no longer calls them. Matched conservatively: only the
activation types in ACTIVATIONS, zero-padded convs, an `add` whose operands have equal
shapes (from shape propagation), each intermediate with a single user. Runs only where oneDNN
is available and the weights are fp32/bf16 on the CPU; elsewhere the graph is unchanged.
A fused model moved later to a dtype or device oneDNN does not take (`.double()`, `.half()`,
`.to("cuda")`) goes back to the unfused graph, which computes the same with the same modules."""
from __future__ import annotations

import copy
import operator

import torch
from torch import fx, nn

from .fxutil import called_module, finish, sole_user

# module type -> (oneDNN attr, scalars, algorithm); a GELU is matched on its `approximate`.
ACTIVATIONS = {
    nn.ReLU: ("relu", [], ""),
    nn.SiLU: ("swish", [], ""),
    nn.ReLU6: ("hardtanh", [0.0, 6.0], ""),
    nn.Hardswish: ("hardswish", [], ""),
    nn.Sigmoid: ("sigmoid", [], ""),
    nn.Tanh: ("tanh", [], ""),
}


def activation_attr(module: nn.Module) -> tuple[str, list, str] | None:
    if type(module) is nn.GELU:
        return "gelu", [], module.approximate
    return ACTIVATIONS.get(type(module))


def _unfuse_when_moved(gm: fx.GraphModule, unfused: fx.Graph) -> None:
    """After `gm._apply` (what `.double()`, `.half()`, `.to(...)` run) leaves parameters oneDNN's
    fused kernels do not take, put back the graph from before fusion. `gm`'s class is its own
    (fx makes one per GraphModule), so only this model changes."""
    cls = type(gm)
    moved = cls._apply

    def _apply(self, fn, *args, **kwargs):
        out = moved(self, fn, *args, **kwargs)
        if not available(self) and any(n.op == "call_function" and "mkldnn" in str(n.target)
                                       for n in self.graph.nodes):
            from .channels_last import to_channels_last

            self.graph = copy.deepcopy(unfused)
            self.recompile()
            to_channels_last(self)
        return out

    cls._apply = _apply


def available(gm: fx.GraphModule) -> bool:
    params = list(gm.parameters())
    return (torch.backends.mkldnn.is_available() and bool(params)
            and all(p.device.type == "cpu" and p.dtype in (torch.float32, torch.bfloat16) for p in params))


def fuse_epilogues(gm: fx.GraphModule) -> fx.GraphModule:
    """Needs `tensor_meta` on the nodes (torch.fx.passes.shape_prop.ShapeProp) to fuse an add."""
    if not available(gm):
        return gm
    _unfuse_when_moved(gm, copy.deepcopy(gm.graph))
    for node in list(gm.graph.nodes):
        if called_module(gm, node, nn.Linear) is not None and _plain_call(node):
            _fuse(gm, node, linear=True)
        elif (conv := called_module(gm, node, nn.Conv2d)) is not None and _plain_call(node) \
                and conv.padding_mode == "zeros" and not isinstance(conv.padding, str):
            _fuse(gm, node, linear=False)
    return finish(gm)


def _plain_call(node: fx.Node) -> bool:
    return len(node.args) == 1 and not node.kwargs


def _act_user(gm: fx.GraphModule, node: fx.Node) -> tuple[fx.Node, tuple] | None:
    user = sole_user(node)
    if user is None or user.op != "call_module" or len(user.args) != 1 or user.kwargs:
        return None
    attr = activation_attr(gm.get_submodule(user.target))
    return (user, attr) if attr is not None else None


def _add_user(node: fx.Node) -> tuple[fx.Node, fx.Node] | None:
    """The residual add that is `node`'s sole user, and its other operand, if shapes match."""
    user = sole_user(node)
    if user is None or user.op != "call_function" or user.target is not operator.add or user.kwargs:
        return None
    a, b = user.args
    other = b if a is node else a
    if not isinstance(other, fx.Node) or other is node:
        return None
    shapes = [n.meta.get("tensor_meta") for n in (node, other, user)]
    if any(s is None for s in shapes) or not shapes[0].shape == shapes[1].shape == shapes[2].shape:
        return None
    return user, other


def _to_nchw_user(node: fx.Node) -> fx.Node | None:
    """`node`'s sole user if it is `permute(node, 0, 3, 1, 2)` (NHWC -> NCHW)."""
    user = sole_user(node)
    if user is None or user.op != "call_method" or user.target != "permute" or user.kwargs:
        return None
    dims = user.args[1:] if len(user.args) > 2 else tuple(user.args[1]) if len(user.args) == 2 else ()
    return user if tuple(dims) == (0, 3, 1, 2) else None


def _fuse_add_behind_permute(gm: fx.GraphModule, node: fx.Node) -> bool:
    """linear -> permute(0, 3, 1, 2) -> add(·, r)  =>  permute(linear_add(x, r.permute(0, 2, 3, 1)), 0, 3, 1, 2):
    ConvNeXt's later stages add their residual in NCHW after the downsample conv."""
    permute = _to_nchw_user(node)
    add = _add_user(permute) if permute is not None else None
    if add is None:
        return False
    module, graph, (add_node, other) = gm.get_submodule(node.target), gm.graph, add
    with graph.inserting_before(node):
        weight = graph.get_attr(f"{node.target}.weight")
        bias = graph.get_attr(f"{node.target}.bias") if module.bias is not None else None
    with graph.inserting_after(add_node):
        other_nhwc = graph.call_method("permute", (other, 0, 2, 3, 1))
    with graph.inserting_after(other_nhwc):
        fused = graph.call_function(torch.ops.mkldnn._linear_pointwise.binary,
                                    (node.args[0], other_nhwc, weight, bias, "add"))
    with graph.inserting_after(fused):
        back = graph.call_method("permute", (fused, 0, 3, 1, 2))
    fused.meta, back.meta = dict(node.meta), dict(add_node.meta)
    add_node.replace_all_uses_with(back)
    for n in (add_node, permute, node):
        graph.erase_node(n)
    return True


def _fuse(gm: fx.GraphModule, node: fx.Node, linear: bool) -> None:
    if linear and _fuse_add_behind_permute(gm, node):
        return
    module, x = gm.get_submodule(node.target), node.args[0]
    absorbed = [node]  # in graph order; the last one's value is what the fused call returns
    act, add = _act_user(gm, node), _add_user(node)
    weight, bias = f"{node.target}.weight", f"{node.target}.bias" if module.bias is not None else None
    if linear and add is not None:
        absorbed.append(add[0])
        op, args = torch.ops.mkldnn._linear_pointwise.binary, (x, add[1], weight, bias, "add")
    elif linear:
        attr = ("none", [], "") if act is None else act[1]
        absorbed += [act[0]] if act is not None else []
        op, args = torch.ops.mkldnn._linear_pointwise.default, (x, weight, bias, *attr)
    else:
        geometry = (list(module.padding), list(module.stride), list(module.dilation), module.groups)
        if add is not None:
            absorbed.append(add[0])
            relu = _act_user(gm, add[0])
            unary = "relu" if relu is not None and relu[1][0] == "relu" else None
            absorbed += [relu[0]] if unary else []
            op, args = (torch.ops.mkldnn._convolution_pointwise.binary,
                        (x, add[1], weight, bias, *geometry, "add", None, unary, [], ""))
        elif act is not None:
            absorbed.append(act[0])
            op, args = torch.ops.mkldnn._convolution_pointwise.default, (x, weight, bias, *geometry, *act[1])
        else:
            return  # a conv with nothing to fuse stays an nn.Conv2d call
    graph, last = gm.graph, absorbed[-1]
    with graph.inserting_before(node):
        params = {name: graph.get_attr(name) for name in (weight, bias) if name is not None}
    with graph.inserting_after(last):
        fused = graph.call_function(op, tuple(params[a] if isinstance(a, str) and a in params else a for a in args))
    fused.meta = dict(last.meta)  # its shape, for a later match on an add it feeds
    last.replace_all_uses_with(fused)
    for n in reversed(absorbed):
        graph.erase_node(n)
