"""Passes over the IR, run in this order by `compiler.check` / `compiler.compile`.

Each pass is a function of an `IRGraph` that updates it in place (nodes' `meta`, inserted or
removed nodes) and raises `CompileErrors` with every error it found.
"""
from .bias import bias_before_norm
from .costs import count_costs
from .layout import assign_layout
from .shapes import infer_shapes

CHECK_PASSES = (bias_before_norm, infer_shapes, count_costs)
LOWERING_PASSES = (assign_layout,)

__all__ = ["CHECK_PASSES", "LOWERING_PASSES", "assign_layout", "bias_before_norm", "count_costs",
           "infer_shapes"]
