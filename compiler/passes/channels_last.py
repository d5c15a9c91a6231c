"""Eval pass: run a conv network on channels-last memory from its input on.

The image arrives NCHW-contiguous. Convs on CPU (oneDNN) are fastest on channels-last
memory, and the layout pass already lets a channels-last op (LayerNorm, nn.Linear) read a
conv's output through a free `permute` when that output is channels-last in memory. One
conversion of the input (and of the conv weights, once) makes that so from the stem on,
instead of a copy in front of the stem's LayerNorm. Values are unchanged; only strides."""
from __future__ import annotations

import torch
from torch import fx, nn

from .fxutil import finish


def to_channels_last(gm: fx.GraphModule) -> fx.GraphModule:
    convs = [m for m in gm.modules() if isinstance(m, nn.Conv2d)]
    inputs = [n for n in gm.graph.nodes if n.op == "placeholder"]
    shape = inputs[0].meta.get("tensor_meta").shape if len(inputs) == 1 and "tensor_meta" in inputs[0].meta else None
    if not convs or shape is None or len(shape) != 4:
        return gm
    for conv in convs:
        conv.weight.data = conv.weight.data.contiguous(memory_format=torch.channels_last)
    x = inputs[0]
    with gm.graph.inserting_after(x):
        converted = gm.graph.call_method("contiguous", (x,), {"memory_format": torch.channels_last})
    x.replace_all_uses_with(converted, delete_user_cb=lambda user: user is not converted)
    return finish(gm)
