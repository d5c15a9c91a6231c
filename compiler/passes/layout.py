"""Layout assignment: which ops run on channels-last data, and where to permute.

Ops stay in the layout their input arrives in when they can; an op that cannot (a LayerNorm
after a conv) gets a `permute` in front of it. So a ConvNeXt block becomes what the official
code writes by hand: dwconv on NCHW, permute, LayerNorm and the two pointwise convs as
`nn.Linear` on NHWC, permute back before the residual add. Writes `meta["layout"]`, the
layout of each node's output."""
from __future__ import annotations

from .. import ops
from ..ir import JOIN_OPS, IRGraph
from ..ops import NCHW, NHWC, VEC


def _insert_permute(ir: IRGraph, nid: int, index: int, to: str) -> None:
    new = ir.insert_before(nid, index, "permute")
    src = ir.inputs(new)[0]
    meta = ir.g.nodes[new]["meta"]
    meta.update(ir.g.nodes[src]["meta"] | {"layout": to, "params": 0, "macs": 0})
    meta["in_shape"] = ir.g.nodes[src]["meta"]["shape"]


def assign_layout(ir: IRGraph) -> None:
    while True:
        todo = next((n for n, d in ir.nodes() if "layout" not in d["meta"]), None)
        if todo is None:
            return
        _place(ir, todo, ir.g.nodes[todo])  # sets its layout, or inserts a permute before it


def _layout_of(ir: IRGraph, nid: int) -> str:
    return ir.g.nodes[nid]["meta"]["layout"]


def _place(ir: IRGraph, nid: int, data: dict) -> None:
    """Set the node's layout, or insert a permute in front of it (placed on the next round)."""
    op, meta = data["op"], data["meta"]
    inputs = ir.inputs(nid)
    if op == "input":
        meta["layout"] = NCHW
        return
    here = _layout_of(ir, inputs[0])
    if op in JOIN_OPS:  # both inputs in one layout
        other = _layout_of(ir, inputs[1])
        if here != other:
            _insert_permute(ir, nid, 0, other)
            return
        meta["layout"] = here
        return
    if op == "output":
        if here == NHWC and len(meta["shape"]) == 3:  # tokens stay (B, N, C)
            _insert_permute(ir, nid, 0, NCHW)
            return
        meta["layout"] = here
        return
    allowed = ops.get(op).layouts_for(data["attrs"])
    if here == VEC:
        assert VEC in allowed, f"{op} was shape-checked for vectors"
    elif here not in allowed:
        _insert_permute(ir, nid, 0, NHWC if here == NCHW else NCHW)
        return
    meta["layout"] = VEC if len(meta["shape"]) == 1 else here
    meta["ran_in"] = here
