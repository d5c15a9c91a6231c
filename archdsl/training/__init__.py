"""Training a spec: `train(spec, data=...)` and `load_checkpoint(out_dir)`.

    import archdsl
    result = archdsl.train("convnext_atto", data="digits", epochs=5, out="runs/atto")
    result.history[-1]["val_acc"], result.checkpoint
    weights = archdsl.load_checkpoint("runs/atto")

Modules: `plan` (spec + data + overrides -> network, recipe, datasets), `data`, `augment`
(kornia), `schedule` (torch.optim + lr_scheduler), `checkpoint` (atomic, safetensors),
`state` (RNG), `distributed` (torchrun), `report` (progress, metrics.jsonl, curves.png),
`engine` (the loop).

May import `api`, `lang` and `compiler`; never `roadmap`, `interop`, `diff` or `cli`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["TrainResult", "load_checkpoint", "train"]


def train(spec: Any, data: Any = "digits", epochs: int | None = None,
          out: str | os.PathLike | None = None, seed: int = 0, resume: bool = False, *,
          skip_bad_images: bool = False, quiet: bool = False, device: str | None = None,
          compile: bool | dict = False, **overrides: Any):
    """Train a spec (name, path or Network) on `data` and return a TrainResult.

    data: "digits", an ImageFolder directory (train/ and val/), or a (train, val) pair of
    torch Datasets yielding (image (C, H, W), label). `overrides` are the API's spec
    overrides: `classes=10`, `input="1x32x32"`, `depths="1,1,1,1"`, and any recipe value as
    `train_lr=1e-3` or `**{"train.lr": 1e-3}`. Under torchrun this trains with DDP.
    compile: build the model with `compile=True` (torch.compile, in place; see `build`).
    """
    from . import distributed
    from .engine import Trainer
    from .plan import plan
    from .report import Reporter

    dist = distributed.setup(device)
    try:
        p = plan(spec, data, epochs=epochs, skip_bad=skip_bad_images, **overrides)
        net = p.network
        out = Path(out) if out is not None else Path("runs") / net.name
        report = Reporter(out, enabled=dist.main, quiet=quiet)
        if dist.main:
            out.mkdir(parents=True, exist_ok=True)
        shape = "x".join(map(str, net.input))
        world = f", {dist.world} processes" if dist.active else ""
        report.line(f"training {net.name} ({shape}, {net.classes} classes) on {p.data.info.name}: "
                    f"{len(p.data.train)} train / {len(p.data.val)} val images, "
                    f"{p.recipe.epochs} epoch{'s' if p.recipe.epochs != 1 else ''}, batch {p.recipe.batch}{world} -> {out}")
        for note in p.notes:
            report.line(f"  note: {note}")

        def builder():
            from ..api import build
            return build(net, compile=compile)

        trainer = Trainer(net, builder, p.recipe, p.data, out, seed, dist, report, resume)
        result = trainer.run()
        result.notes = p.notes
        return result
    finally:
        dist.close()


def load_checkpoint(out_dir: str | os.PathLike):
    """The latest weights of a run directory (OUT/checkpoints/step-*/model.safetensors) as a
    state dict; read with safetensors, nothing unpickled."""
    from .checkpoint import load_checkpoint as load

    return load(out_dir)


def __getattr__(name: str):
    if name == "TrainResult":
        from .engine import TrainResult
        return TrainResult
    raise AttributeError(name)
