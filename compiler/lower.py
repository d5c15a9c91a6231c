"""IR -> torch.fx.GraphModule. Every op node becomes a `call_module` at its spec path
(`stages.2.blocks.5.dwconv`), residual joins become `add`, gates `mul`, `concat { }` `torch.cat`,
`subtract { }` `sub`, layout changes `permute`; a features build's tokens become maps through
`tokens_to_map` (passes/taps.py)."""
from __future__ import annotations

import operator

import torch
from torch import fx, nn

from . import ops
from .ir import IRGraph
from .ops import NCHW, NHWC, cat_dim
from .passes.taps import token_grid
from .sections import Model

_PERMUTE = {NHWC: (0, 2, 3, 1), NCHW: (0, 3, 1, 2)}


def tokens_to_map(x: torch.Tensor, drop: int, h: int, w: int) -> torch.Tensor:
    """Tokens (B, N, C) -> the channels-last map (B, H, W, C) they were flattened from, row by
    row, the `drop` tokens in front (a class token) left out."""
    return x[:, drop:].unflatten(1, (h, w))


def _set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    *parents, leaf = path.split(".")
    parent = root
    for name in parents:
        if not hasattr(parent, name):
            parent.add_module(name, nn.Module())
        parent = getattr(parent, name)
    assert not hasattr(parent, leaf), f"two ops lowered to {path}"
    parent.add_module(leaf, module)


def lower(ir: IRGraph) -> fx.GraphModule:
    """Build the modules (on the current default device) and the fx graph that calls them."""
    root = nn.Module()
    graph = fx.Graph()
    env: dict[int, fx.Node] = {}
    for nid, data in ir.nodes():
        op, meta = data["op"], data["meta"]
        args = [env[i] for i in ir.inputs(nid)]
        if op == "input":
            env[nid] = graph.placeholder("x", type_expr=torch.Tensor)
        elif op == "output":  # a features build returns its taps (and the output): passes/taps.py
            returns = data.get("returns")
            graph.output(args[0] if returns is None else list(args) if returns == "taps"
                         else (args[0], list(args[1:])))
        elif op == "tap":  # a value a features build returns twice
            env[nid] = args[0]
        elif op == "tomap":
            h, w = data["grid"]
            env[nid] = graph.call_function(tokens_to_map, (args[0], data["drop"], h, w))
        elif op == "add":
            env[nid] = graph.call_function(operator.add, tuple(args))
        elif op == "mul":  # a gate: x * branch(x), the branch broadcast over the map
            env[nid] = graph.call_function(operator.mul, tuple(args))
        elif op == "sub":  # branch(x) - x
            env[nid] = graph.call_function(operator.sub, tuple(args))
        elif op == "cat":  # x and branch(x) side by side along the channels
            env[nid] = graph.call_function(torch.cat, (list(args), cat_dim(meta["layout"])))
        elif op == "permute":
            env[nid] = graph.call_method("permute", (args[0], *_PERMUTE[meta["layout"]]))
        else:
            module = ops.get(op).module(data["attrs"], meta["in_shape"], meta["ran_in"])
            if op == "posembed":  # the (H, W) its tokens were flattened from: weights resample onto it
                module.grid = token_grid(ir, nid)
            _set_submodule(root, data["path"], module)
            env[nid] = graph.call_module(data["path"], (args[0],))
    graph.lint()
    return Model(root, graph, class_name=_class_name(ir.name))


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_")) or "Network"
