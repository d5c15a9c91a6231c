"""`archdsl train`: train a spec from the command line (also under torchrun).

    archdsl train specs/convnext_atto.arch --data digits --epochs 5
    archdsl train convnext_atto --data ./my_images --out runs/mine --set train.lr=1e-3
    archdsl train convnext_atto --data 'shards/train-{000000..000127}.tar' --set train.workers=8
    torchrun --nproc_per_node=2 -m archdsl train convnext_atto --data digits --epochs 5

    archdsl train convnext_atto --data digits --compile      # torch.compile (inductor)
    archdsl train-roadmap --data digits --epochs 4 --channels-last --precision bf16

A user error prints rustc-style and exits 1; SIGINT/SIGTERM save a checkpoint and exit
128+signal (130, 143) with a line saying how to resume.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from ..training.allocator import keep_freed_memory
from .common import complete_spec, fail, plain_console, shout, usage, visible


def _overrides(set_: list[str] | None, precision: str | None, channels_last: bool,
               run: Callable) -> dict[str, object]:
    """`--set` items plus the options that are recipe values in disguise. A key that names one
    of `run`'s own arguments (`epochs`, `seed`, ...) is a usage error: it has its option."""
    import inspect

    from ..lang.overrides import parse_set

    overrides: dict[str, object] = dict(parse_set(set_ or []))
    own = {n for n, p in inspect.signature(run).parameters.items() if p.kind is not p.VAR_KEYWORD}
    for key in overrides.keys() & own:
        option = f"--{key.replace('_', '-')}"
        usage(f"`--set {key}=...` is not a spec value; use {option} (or `--set train.{key}=...` for the recipe)"
              if key == "epochs" else f"`--set {key}=...` is not a spec value; use {option}")
    if precision is not None:
        overrides["train.precision"] = precision
    if channels_last:
        overrides["train.channels_last"] = True
    return overrides


INIT_WHICH = {"last": "its last weights", "best": "its best weights (by validation accuracy)",
              "ema": "its EMA weights"}


def _init_from(source: Path, source_spec: str | None, quiet: bool, which: str | None = None,
               force: bool = False):
    """`--init-from`: the weights, read now (a bad path fails before training starts), and the
    function that carries them into the built model (`archdsl.transfer`). Without --init-spec
    the source is the network being trained itself (its --set values included), so a run
    carried to another input size, window or class count pairs every op with itself and the
    tensors are fitted to their new shapes (interop/resize.py).

    A run directory gives its newest checkpoint that verifies: its last weights, or with
    `which` (--init-checkpoint) its best or EMA ones; a file is read as it is. An EMA's
    AveragedModel state dict is unwrapped. Weights whose widths differ (most tensors would
    only have their overlap copied) are refused unless `force`."""
    from ..interop.transfer import transfer
    from ..interop.weights import strip_averaged
    from ..lang.errors import ArchError

    recorded = None  # the network the checkpoint says it holds
    if source.is_dir():
        from ..training.checkpoint import newest_checkpoint, read_weights, weights_in

        ckpt = newest_checkpoint(source)
        name, manifest = weights_in(ckpt, which or "last")
        if name is None:
            raise ArchError(f"--init-from {source}: its newest checkpoint {ckpt.name} holds no {which} weights"
                            + (" (the run's recipe keeps no EMA)" if which == "ema" else ""),
                            hint="--init-checkpoint last" + (", or train with an EMA (--set train.ema=0.9999)"
                                                             if which == "ema" else ""), code="E751")
        path = ckpt / name
        weights = read_weights(path)
        recorded = manifest.get("network") if isinstance(manifest.get("network"), str) else None
        loading = f"init from {path}: the newest checkpoint of {source} that verifies, {INIT_WHICH[which or 'last']}"
    elif which is not None:
        raise ArchError(f"--init-checkpoint {which} picks among the weights of a run directory, and "
                        f"--init-from {source} is no directory",
                        hint="pass the run directory (OUT of `archdsl train`), or leave out --init-checkpoint "
                             "to read the file as it is", code="E751")
    elif source.is_file() and source.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            weights = load_file(str(source))
        except Exception as e:  # noqa: BLE001 - a damaged file is the user's to fix
            raise ArchError(f"cannot read {source}: {e}", hint="pass a run directory or a model.safetensors",
                            code="E751") from None
        if not weights:
            raise ArchError(f"--init-from {source} holds no tensors: the run would start from scratch",
                            hint="pass the weights of a trained run (OUT/best.safetensors, or OUT)", code="E751")
        path, recorded, loading = source, _recorded_network(source), f"init from {source}"
    else:
        raise ArchError(f"--init-from {source}: no run directory or .safetensors file there",
                        hint="pass a run directory (OUT of an earlier `archdsl train`) or a .safetensors file",
                        code="E751")

    import torch

    nonfinite = next((k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if nonfinite is not None:
        raise ArchError(f"--init-from {source}: `{nonfinite}` holds NaN or infinite values",
                        hint="start from a checkpoint of the run before it diverged", code="E751")
    keys = set(strip_averaged(weights)[0])  # an EMA's names are the model's under `module.`

    def init(model, net) -> None:
        import re

        from ..api import build

        def kinds(names) -> set[str]:  # tensor names with the stage and block numbers left out
            return {re.sub(r"\d+", "#", k) for k in names}

        spec = source_spec or net
        names = set(build(spec, device="meta").state_dict())
        if source_spec is not None:  # named: the weights must be exactly that network's
            extra, missing = sorted(keys - names), sorted(names - keys)
            if extra or missing:
                what = (f"`{extra[0]}` is no tensor of it" if extra else f"they lack its `{missing[0]}`")
                raise ArchError(f"--init-from {source}: these weights are not {source_spec}'s ({what}; "
                                f"{len(extra)} extra, {len(missing)} missing)",
                                hint="name the spec (and --set values) they were trained with, e.g. a "
                                     "file `archdsl flatten SPEC --set ... -o trained.arch` wrote", code="E751")
        expected = kinds(names)
        foreign = sorted(kinds(keys) - expected)
        if len(foreign) > len(kinds(keys)) / 2:  # another network's weights: little would carry over
            raise ArchError(f"--init-from {source}: these weights are not {source_spec or net.name}'s (e.g. "
                            f"`{foreign[0]}` is no tensor of it)",
                            hint="name the spec they were trained with: --init-spec SPEC", code="E751")
        if not quiet:
            print(loading)
        _, report = transfer(spec, net, weights, into=model, quiet=True)
        if recorded is not None:
            report.src = recorded
        elif source_spec is None:
            report.src = f"{path.name} (paired as {net.name})"
        cut = report.overlap_copied
        if len(cut) * 2 > report.total and not force:
            what = (f"the weights ({report.src}) were trained with other widths than this {net.name} has"
                    if source_spec is None else f"the edit {report.src} -> {net.name} changes their channels")
            raise ArchError(f"--init-from {source}: {len(cut)} of {report.total} tensors would only have their "
                            f"overlap copied (e.g. `{cut[0].path}`: {cut[0].how}): {what}",
                            hint=("train with the widths the weights were trained with (the run's --set values), "
                                  "name their spec with --init-spec, or pass --force to start from the overlap "
                                  "anyway" if source_spec is None else
                                  "pass --force to start from the overlap anyway, or leave out --init-from to "
                                  "start from the spec's init"), code="E751")
        if not quiet:
            print(report)
            if cut:
                from .common import shout

                shout(f"warning: {len(cut)} of {report.total} tensors only had their overlap copied "
                      f"(other widths: e.g. `{cut[0].path}`, {cut[0].how})"
                      + ("; carried anyway (--force)" if len(cut) * 2 > report.total else ""))

    return init


def _recorded_network(path: Path) -> str | None:
    """The network a run's checkpoint records for one of its files (its manifest.json beside
    it), or None for a file from elsewhere."""
    import json

    try:
        manifest = json.loads((path.parent / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    network = manifest.get("network") if isinstance(manifest, dict) else None
    return network if isinstance(network, str) else None


def register(app: typer.Typer) -> None:
    """Add the `train` command to the archdsl CLI."""

    @app.command("train")
    def train_command(
        spec: Annotated[str, typer.Argument(help="A spec: a .arch path or a shipped name.",
                                            autocompletion=complete_spec)],
        data: Annotated[str, typer.Option(help="`digits` (scikit-learn's, bundled), a directory "
                                               "with train/<class>/ and val/<class>/ images, or WebDataset "
                                               "shards (a directory of train-*.tar/val-*.tar, or "
                                               "'shards/train-{000000..000127}.tar').")] = "digits",
        epochs: Annotated[Optional[int], typer.Option(help="Epochs (overrides the recipe's).")] = None,
        out: Annotated[Optional[Path], typer.Option(help="Run directory: checkpoints, metrics.jsonl, "
                                                        "curves.png. Default runs/<network>.")] = None,
        seed: Annotated[int, typer.Option(help="Seed for weights, data order and augmentation.",
                                          min=0, max=2 ** 63 - 1)] = 0,
        resume: Annotated[bool, typer.Option("--resume", help="Continue from the latest checkpoint "
                                                             "in --out.")] = False,
        set_: Annotated[Optional[list[str]], typer.Option(
            "--set", help="Override a spec or recipe value: KEY=VALUE (repeatable), e.g. "
                          "train.lr=1e-3, train.batch=128, depths=1,1,3,1, input=1x64x64.")] = None,
        precision: Annotated[Optional[str], typer.Option(help="fp32 or bf16 (autocast).")] = None,
        channels_last: Annotated[bool, typer.Option("--channels-last",
                                                    help="Channels-last memory format.")] = False,
        skip_bad_images: Annotated[bool, typer.Option(
            "--skip-bad-images", help="Leave out images Pillow cannot decode, counted in metrics.jsonl "
                                      "and logged with their path in OUT/bad_images.txt, instead of "
                                      "saving a checkpoint and stopping (E702).")] = False,
        device: Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1 ... (default: the "
                                                           "local GPU if any).")] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
        force: Annotated[bool, typer.Option("--force", help="With --resume: continue even though the "
                                                            "network or the data differs from the "
                                                            "checkpoint's (where the weights still fit). "
                                                            "With --init-from: start from weights of other "
                                                            "widths, only their overlap copied.")] = False,
        no_memory_check: Annotated[bool, typer.Option("--no-memory-check", help="Skip the estimate that "
                                                      "refuses a run too big for the device's free memory.")] = False,
        init_from: Annotated[Optional[Path], typer.Option(
            "--init-from", help="Start from trained weights: a run directory (its newest checkpoint's "
                                "last weights; see --init-checkpoint) or a .safetensors file (an EMA's "
                                "ema.safetensors too), carried across the edit op by op (see --init-spec).")] = None,
        init_checkpoint: Annotated[Optional[str], typer.Option(
            "--init-checkpoint", help="With --init-from RUN: its last (default), best or EMA (ema) "
                                      "weights.")] = None,
        init_spec: Annotated[Optional[str], typer.Option(
            "--init-spec", help="The spec those weights were trained with (default: SPEC itself).")] = None,
        compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the model (inductor); "
                                                                 "the first steps compile, then run faster.")] = False,
    ) -> None:
        """Train a spec with its `train { }` recipe; any recipe value can be overridden."""
        from ..lang.errors import ArchError

        if precision not in (None, "fp32", "bf16"):
            usage(f"--precision takes fp32 or bf16, not `{precision}`")
        if init_checkpoint is not None and init_checkpoint not in INIT_WHICH:
            usage(f"--init-checkpoint takes last, best or ema, not `{init_checkpoint}`")
        if init_checkpoint is not None and init_from is None:
            usage("--init-checkpoint picks the weights of --init-from RUN: give --init-from too")
        from ..training import train
        from ..training.engine import Interrupted

        keep_freed_memory()
        try:
            overrides = _overrides(set_, precision, channels_last, train)
            init = (_init_from(init_from, init_spec, quiet, init_checkpoint, force)
                    if init_from is not None else None)
            train(spec, data=data, epochs=epochs, out=out, seed=seed, resume=resume,
                  skip_bad_images=skip_bad_images, quiet=quiet, device=device, force=force,
                  check_memory=not no_memory_check, init_from=init,
                  compile=compile_,
                  **overrides)
        except Interrupted as e:
            shout(f"{e.message}\nhelp: {e.hint}")
            raise typer.Exit(e.exit_code)
        except ArchError as e:
            fail(e)

    @app.command("train-roadmap")
    def train_roadmap_command(
        directory: Annotated[Optional[Path], typer.Argument(
            help="A directory of step specs (default: the shipped specs/roadmap).",
            show_default=False)] = None,
        data: Annotated[str, typer.Option(help="`digits` or an ImageFolder directory.")] = "digits",
        epochs: Annotated[int, typer.Option(help="Epochs per step.")] = 4,
        out: Annotated[Path, typer.Option(help="Runs go to OUT/<step>; finished ones are reused.")]
            = Path("runs/roadmap"),
        seed: Annotated[int, typer.Option(help="Seed for every step.", min=0, max=2 ** 63 - 1)] = 0,
        set_: Annotated[Optional[list[str]], typer.Option(
            "--set", help="Override for every step: KEY=VALUE (repeatable).")] = None,
        precision: Annotated[Optional[str], typer.Option(help="fp32 or bf16 (autocast).")] = None,
        channels_last: Annotated[bool, typer.Option("--channels-last",
                                                    help="Channels-last memory format.")] = False,
        resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Reuse finished runs under OUT and "
                                             "continue interrupted ones (the default); --no-resume stops at "
                                             "an existing run instead.")] = True,
    ) -> None:
        """Mini Table 10: train every roadmap step and print its accuracy beside the paper's.

        DIRECTORY may be any directory of specs, e.g. the variants `archdsl ablate --out DIR` writes."""
        import io
        import sys

        from ..roadmap.render import notes, roadmap_table
        from ..lang.errors import ArchError
        from ..training.report import pct
        from ..roadmap.train import train_roadmap
        from ..training.engine import Interrupted

        if precision not in (None, "fp32", "bf16"):
            usage(f"--precision takes fp32 or bf16, not `{precision}`")
        keep_freed_memory()

        def progress(row, result, seconds):
            h = result.history[-1] if result.history else {}
            shout(f"{row.step:<20} best val_acc {pct(result.best_acc):>7}  "
                  f"{h.get('images_per_s', 0):5.0f} img/s  {seconds:6.1f}s")

        started = time.perf_counter()
        try:
            overrides = _overrides(set_, precision, channels_last, train_roadmap)
            rows = train_roadmap(directory, data=data, epochs=epochs, out=out, seed=seed, resume=resume,
                                 on_step=progress, **overrides)
        except Interrupted as e:  # its hint says: the same command with --resume
            shout(f"{e.message}\nhelp: {e.hint}")
            raise typer.Exit(e.exit_code)
        except ArchError as e:
            fail(e)
        buf = io.StringIO()
        console = plain_console(file=buf, width=220, color_system=None)
        console.print(roadmap_table(rows))
        for line in notes(rows):
            console.print(visible(line))
        sys.stdout.write("".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines()))
        print(f"trained {len(rows)} steps in {time.perf_counter() - started:.0f}s; runs in {out}")
