"""Eval pass: drop the modules that are the identity at inference (drop path, dropout,
identity), so the passes after this one see a conv or linear next to what follows it.

Only these known types are removed; anything else is left alone."""
from __future__ import annotations

from torch import fx, nn

from ..modules import DropPath
from .fxutil import bypass, called_module, finish

IDENTITY_AT_EVAL = (DropPath, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity)


def remove_identities(gm: fx.GraphModule) -> fx.GraphModule:
    for node in list(gm.graph.nodes):
        if called_module(gm, node, IDENTITY_AT_EVAL) is not None and len(node.args) == 1 and not node.kwargs:
            bypass(gm, node, node.args[0])
    return finish(gm)
