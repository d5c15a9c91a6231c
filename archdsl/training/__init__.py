"""Training a spec: `train(spec, data=...)` and `load_checkpoint(out_dir)`.

    import archdsl
    result = archdsl.train("convnext_atto", data="digits", epochs=5, out="runs/atto")
    result.history[-1]["val_acc"], result.checkpoint
    weights = archdsl.load_checkpoint("runs/atto")

Modules: `plan` (spec + data + overrides -> network, recipe, datasets), `data` (sources as
archdsl.data datasets), `augment` (the batch stage on the device), `schedule` (torch.optim + lr_scheduler), `checkpoint` (atomic, safetensors),
`state` (RNG), `distributed` (torchrun), `report` (progress, metrics.jsonl, curves.png),
`engine` (the loop).

May import `api`, `data`, `lang` and `compiler`; never `roadmap`, `interop`, `diff` or `cli`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["TrainResult", "load_checkpoint", "train"]


def train(spec: Any, data: Any = "digits", epochs: int | None = None,
          out: str | os.PathLike | None = None, seed: int = 0, resume: bool = False, *,
          skip_bad_images: bool = False, quiet: bool = False, device: str | None = None,
          force: bool = False, check_memory: bool = True,
          init_from: Any = None, compile: bool | dict = False, **overrides: Any):
    """Train a spec (name, path or Network) on `data` and return a TrainResult.

    data: "digits", an ImageFolder directory (train/ and val/), or a (train, val) pair of
    torch Datasets yielding (image (C, H, W), label). `init_from(model, network)`, if given,
    sets the built model's weights before training starts (the CLI's `--init-from`). `overrides` are the API's spec
    overrides: `classes=10`, `input="1x32x32"`, `depths="1,1,1,1"`, and any recipe value as
    `train_lr=1e-3` or `**{"train.lr": 1e-3}`. Under torchrun this trains with DDP.

    OUT is locked for the run (OUT/.lock): a second run on it is refused while this one lives.
    `resume` continues from the newest checkpoint that verifies; `force` lets it continue with
    a network that differs from the checkpoint's where the weights still fit. `check_memory`
    refuses a run whose estimated memory exceeds what the device has free.
    compile: build the model with `compile=True` (torch.compile, in place; see `build`).
    """
    from . import distributed
    from .checkpoint import os_error
    from .engine import Trainer
    from .lock import RunLock
    from .plan import plan
    from .report import Reporter
    from ..lang.errors import ArchError

    _check_types(epochs=(epochs, int, True), seed=(seed, int, False), resume=(resume, bool, False),
                 force=(force, bool, False), quiet=(quiet, bool, False),
                 device=(device, str, True), check_memory=(check_memory, bool, False))
    if not 0 <= seed < 2 ** 63:
        raise ArchError(f"`seed` must be in 0..2**63-1, not {seed}"[:200], hint="for example seed=0",
                        code="E760")
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise ArchError(f"`out` takes a directory path (str or Path), not {type(out).__name__}",
                        hint='for example out="runs/atto"', code="E760")
    dist = distributed.setup(device)
    lock = None
    try:
        p = plan(spec, data, epochs=epochs, skip_bad=skip_bad_images, seed=seed, **overrides)
        net = p.network
        out = Path(out) if out is not None else Path("runs") / net.name
        check_out(out)
        if check_memory:
            from .memory import check_training_memory
            check_training_memory(net, p.recipe, dist.device, dist.world)
        report = Reporter(out, enabled=dist.main, quiet=quiet, log_every=p.recipe.log_every,
                          track=p.recipe.track)
        if dist.main:
            lock = RunLock(out).acquire()  # before anything is written to OUT
        shape = "x".join(map(str, net.input))
        world = f", {dist.world} processes" if dist.active else ""
        report.line(f"training {net.name} ({shape}, {net.classes} classes) on {p.data.info.name}: "
                    f"{len(p.data.train)} train / {len(p.data.val)} val images, "
                    f"{p.recipe.epochs} epoch{'s' if p.recipe.epochs != 1 else ''}, batch {p.recipe.batch}{world} -> {out}")
        from .threads import shared_machine_note
        for note in [*p.notes, shared_machine_note()]:
            if note:
                report.line(f"  note: {note}")

        def builder():
            from ..api import build
            from .head_init import head_note, scale_head
            model = build(net, check_memory=False, compile=compile)
            scale = p.recipe.head_init_scale
            scaled = scale_head(model, scale) if scale != 1.0 else None  # before loading, as the official
            if init_from is not None:  # e.g. weights carried across an edit (archdsl.transfer)
                init_from(model, net)
            if scaled is not None:
                report.line("  " + head_note(model, scaled, scale, loaded=init_from is not None))
            return model

        trainer = Trainer(net, builder, p.recipe, p.data, out, seed, dist, report, resume, force,
                          skip_bad=skip_bad_images)
        report.begin(net, p.recipe, step=trainer.step)
        try:
            result = trainer.run()
        finally:
            report.close()
        result.notes = p.notes
        return result
    except OSError as e:  # anything the checkpoint and report writers did not already name
        raise os_error(e, getattr(e, "filename", None) or out, "write") from None
    finally:
        if lock is not None:
            lock.release()
        dist.close()


def check_out(out: Path) -> None:
    """A run directory that is a directory of its own: not '' (the current directory) and not
    inside another run's checkpoints/ (it would be taken for, or prune, that run's checkpoints)."""
    from .checkpoint import step_dirs
    from ..lang.errors import ArchError

    if str(out).strip() in ("", "."):
        raise ArchError("--out '' would write the run into the current directory",
                        hint="name a run directory, e.g. --out runs/atto", code="E760")
    parts = Path(os.path.abspath(out)).parts
    for i in range(1, len(parts)):
        run = Path(*parts[:i])
        if parts[i] == "checkpoints" and (step_dirs(run) or (run / "metrics.jsonl").is_file()):
            raise ArchError(f"--out {out} is inside the checkpoints of the run {run}",
                            hint=f"choose a directory outside it (to continue that run: --out {run} "
                                 "--resume)", code="E760")


def _check_types(**values: tuple[Any, type, bool]) -> None:
    """Each keyword's (value, type, may be None): a wrong type is an ArchError with a hint."""
    from ..lang.errors import ArchError

    for name, (value, kind, optional) in values.items():
        if value is None and optional:
            continue
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            raise ArchError(f"`{name}` takes {'a' if kind is not int else 'an'} {kind.__name__}"
                            f"{' or None' if optional else ''}, not {type(value).__name__} `{value!r}`"[:200],
                            hint=f"for example {name}={_EXAMPLE.get(name, '...')}", code="E760")


_EXAMPLE = {"epochs": "5", "seed": "0", "resume": "True", "force": "False", "quiet": "True",
            "device": '"cpu"', "check_memory": "False"}


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
