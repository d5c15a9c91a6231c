"""archdsl's graph compiler: IR (networkx) -> checked, costed IR -> torch.fx GraphModule.

It knows nothing of text. `check` runs the analysis passes (shapes, costs); `compile`
also assigns layouts and lowers, building the modules on the given device."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import CompileError, CompileErrors
from .ir import Attrs, Gate, IRGraph, Residual
from .passes import CHECK_PASSES, LOWERING_PASSES

if TYPE_CHECKING:  # torch is imported only to lower, so checking and counting start fast
    import torch
    from torch import fx


def check(ir: IRGraph) -> IRGraph:
    for run_pass in CHECK_PASSES:
        run_pass(ir)
    return ir


def compile(ir: IRGraph, *, device: str | torch.device | None = None, init: tuple = ("default", None),
            fuse: bool = True) -> fx.GraphModule:
    """Checked IR -> GraphModule. `device="meta"` builds without allocating any memory."""
    import torch

    from .init import initialize
    from .lower import lower
    from .passes.fuse import fuse_linear_layerscale

    check(ir)
    for run_pass in LOWERING_PASSES:
        run_pass(ir)
    with torch.device("meta"):  # allocate once, below, instead of initialising twice
        gm = lower(ir)
    if str(device) != "meta":
        gm = gm.to_empty(device=device if device is not None else torch.get_default_device())
        initialize(gm, *init)
    return fuse_linear_layerscale(gm) if fuse else gm


__all__ = ["Attrs", "CompileError", "CompileErrors", "Gate", "IRGraph", "Residual", "check", "compile"]
