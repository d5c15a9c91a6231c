"""A mini Table 10: train every roadmap step on small data and put the measured accuracy
beside the paper's.

    rows = train_roadmap(data="digits", epochs=2)     # RoadmapRow list, .metrics filled in
    archdsl train-roadmap --data digits --epochs 2    # the same, printed as the roadmap table

Each step trains with its own recipe (step 00 the PyTorch ResNet recipe, later steps the
enhanced one), adapted to the data and the run length exactly as `archdsl train` adapts it,
at the data's input size (32x32 for digits). Runs live in OUT/<step>; a step whose run
already finished there is read back, not retrained, so an interrupted roadmap continues
where it stopped. A demonstration, not a benchmark: one seed, a few epochs.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable


def metric_name(data: Any, epochs: int) -> str:
    name = data if isinstance(data, str) and data == "digits" else Path(str(data)).name
    return f"{name} top-1 ({epochs} ep)"


def train_roadmap(directory: str | Path | None = None, data: Any = "digits", epochs: int = 2,
                  out: str | Path = "runs/roadmap", seed: int = 0, resume: bool = True,
                  on_step: Callable[[Any, Any, float], None] | None = None, **overrides: Any):
    """Train each step of the roadmap in `directory` (default: the shipped specs/roadmap).
    Returns the roadmap's rows with `metrics` holding the best validation accuracy (%).
    `resume`: a finished run under `out` is read back and an interrupted one continues (the
    default); False refuses to touch an existing run."""
    from .chain import roadmap
    from ..training import train

    rows = roadmap(directory).rows
    key = metric_name(data, epochs)
    for row in rows:
        if row.reference:
            continue  # Swin-T is the paper's reference, not a step
        started = time.perf_counter()
        result = train(row.path, data, epochs=epochs, out=Path(out) / row.step, seed=seed,
                       resume=resume, quiet=True, **overrides)
        row.metrics[key] = round(100 * result.best_acc, 2)
        if on_step is not None:
            on_step(row, result, time.perf_counter() - started)
    return rows
