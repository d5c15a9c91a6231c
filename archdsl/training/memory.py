"""Will a run fit? Estimated from the analytic report before anything is allocated."""
from __future__ import annotations

from ..lang.recipe import TrainRecipe
from ..report import gib, require_memory, training_memory


def check_training_memory(net, recipe: TrainRecipe, device, world: int = 1) -> dict[str, int]:
    """Raise a ResourceError (E902) when weights, gradients, optimizer state, EMA and the
    activations of one process's batch exceed the memory `device` has available."""
    from ..api import analyze

    report = analyze(net)
    batch = max(1, recipe.batch // max(1, world))
    parts = training_memory(report, recipe.optimizer, recipe.ema is not None, batch, recipe.precision)
    detail = ", ".join(f"{k} {gib(v)}" for k, v in parts.items() if v)
    require_memory(sum(parts.values()), device, f"training {net.name} at batch {batch} ({detail})",
                   "lower the batch (--set train.batch=...), shrink the network, or skip this "
                   "estimate with --no-memory-check (check_memory=False in the API); "
                   'archdsl.build(spec, device="meta") inspects a model without allocating it',
                   code="E902", span=net.spans.get("train"))
    return parts
