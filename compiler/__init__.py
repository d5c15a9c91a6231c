"""archdsl's graph compiler: IR (networkx) -> checked, costed IR -> torch.fx GraphModule.

It knows nothing of text. `check` runs the analysis passes (shapes, costs); `compile`
also assigns layouts and lowers, building the modules on the given device; `mode="eval"`
then runs the inference passes (passes/eval_build.py)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import CompileError, CompileErrors
from .ir import Attrs, Gate, IRGraph, Join, Residual
from .passes import CHECK_PASSES, LOWERING_PASSES

if TYPE_CHECKING:  # torch is imported only to lower, so checking and counting start fast
    import torch
    from torch import fx


def check(ir: IRGraph) -> IRGraph:
    for run_pass in CHECK_PASSES:
        run_pass(ir)
    return ir


def compile(ir: IRGraph, *, device: str | torch.device | None = None, init: tuple = ("default", None),
            fuse: bool = True, mode: str = "train", torch_compile: bool | dict = False,
            state_dict: dict | None = None) -> fx.GraphModule:
    """Checked IR -> GraphModule. `device="meta"` builds without allocating any memory.

    mode="train": the trainable module (layer scale fused into its linear as `scaled_linear`
    unless fuse=False; on CPU, a conv network on channels-last memory: passes/channels_last.py).
    mode="eval": an inference-only module in eval mode, with norms and scales folded into the
    weights and epilogues fused (see passes/eval_build.py).
    torch_compile=True (or a dict of torch.compile arguments, e.g. {"backend": "aot_eager"}):
    the same module, compiled in place with inductor (`nn.Module.compile`,
    so paths and the state dict do not change): for training with the channels-last depthwise
    conv op (passes/dwconv_layout.py), for eval with inductor's freezing, which does its own
    epilogue fusion and weight prepacking (so `fuse_epilogues` is left out).
    state_dict: weights in the train build's naming, loaded before any pass (how a trained
    model becomes an eval build)."""
    import torch

    from .init import initialize, rebuild_buffers
    from .lower import lower
    from .passes.channels_last import to_channels_last
    from .passes.fuse import fuse_linear_layerscale

    if mode not in ("train", "eval"):
        raise ValueError(f"mode must be 'train' or 'eval', not {mode!r}")
    check(ir)
    for run_pass in LOWERING_PASSES:
        run_pass(ir)
    with torch.device("meta"):  # allocate once, below, instead of initialising twice
        gm = lower(ir)
    if str(device) != "meta":
        gm = gm.to_empty(device=device if device is not None else torch.get_default_device())
    if state_dict is not None:  # the weights are given: initialising them first would be wasted
        gm.load_state_dict(state_dict)
        rebuild_buffers(gm)
    elif str(device) != "meta":
        initialize(gm, *init)
    if mode == "eval":
        from .passes.eval_build import EVAL_PASSES, build_for_eval, fuse_epilogues
        passes = tuple(p for p in EVAL_PASSES if not (torch_compile and p is fuse_epilogues))
        gm = build_for_eval(gm, tuple(ir.input_shape), passes)
    else:
        if fuse:
            gm = fuse_linear_layerscale(gm)
        if len(ir.input_shape) == 3 and next(gm.parameters(), torch.empty(0)).device.type == "cpu":
            gm = to_channels_last(gm, image_input=True)
    if torch_compile:
        from .passes.dwconv_layout import use_channels_last_dwconv
        if mode == "train":
            gm = use_channels_last_dwconv(gm)
        kwargs = dict(torch_compile) if isinstance(torch_compile, dict) else {}
        if mode == "eval" and kwargs.get("backend", "inductor") == "inductor":
            kwargs.setdefault("options", {"freezing": True})
        gm.compile(**kwargs)
    return gm


__all__ = ["Attrs", "CompileError", "CompileErrors", "Gate", "IRGraph", "Join", "Residual", "check", "compile"]
