"""Analytic costs per node, into `meta`: `params`, `macs` and `act` (output elements per sample).

MACs count the multiply-accumulates of convolutions and linear layers only, the
torchvision/timm convention that `FlopCounterMode` (halved) reproduces."""
from __future__ import annotations

import math

from .. import ops
from ..ir import IRGraph


def count_costs(ir: IRGraph) -> None:
    for nid, data in ir.nodes():
        meta, op = data["meta"], data["op"]
        meta["act"] = math.prod(meta["shape"])
        if op in ops.REGISTRY:
            opdef = ops.get(op)
            meta["params"] = opdef.params(data["attrs"], meta["in_shape"])
            meta["macs"] = opdef.macs(data["attrs"], meta["in_shape"], meta["shape"])
        else:
            meta["params"] = meta["macs"] = 0
