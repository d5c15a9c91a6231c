"""A conv feeding straight into `bn` needs no bias: the norm's shift absorbs it.

Convs whose bias was not stated get one unless their only user is a BatchNorm; `bias` or
`nobias` in the spec always wins."""
from __future__ import annotations

from ..ir import IRGraph

CONV_OPS = ("conv", "dwconv", "pwconv")


def bias_before_norm(ir: IRGraph) -> None:
    for nid, data in ir.nodes():
        if data["op"] in CONV_OPS and data["attrs"].bias is None:
            users = ir.users(nid)
            feeds_bn = len(users) == 1 and ir.g.nodes[users[0]]["op"] == "bn"
            data["attrs"] = data["attrs"].with_(bias=not feeds_bn)
