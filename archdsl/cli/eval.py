"""`archdsl eval SPEC --weights RUN|FILE --data DIR|SHARDS`: score weights on a split.

    archdsl eval convnext_atto --weights runs/atto --data ./images
    archdsl eval convnext_t --weights convnext_tiny_1k_224.pth --layout official --data imagenet --json
    archdsl eval convnext_atto --weights runs/atto --data ./images --out runs/atto/eval
    archdsl eval convnext_atto --weights runs/digits --data digits --checkpoint ema

Prints top-1, top-5, per-class accuracy, images/s and the images skipped as unreadable;
`--json` prints one JSON object instead; `--out DIR` writes DIR/confusion.png and
DIR/scores.json. A user error prints rustc-style and exits 1; a usage error exits 2.
"""
# No `from __future__ import annotations`: typer reads the real annotations of the commands.

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import SetOpt, SpecArg, fail, overrides, say, usage

LAYOUTS = ("archdsl", "official", "timm", "torchvision")
SHOWN_CLASSES = 20  # per-class lines printed; --json and OUT/scores.json have them all


def _floats(option: str, text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        usage(f"{option} takes numbers separated by commas (e.g. 0.485,0.456,0.406), not `{text}`")


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_command(
        spec: SpecArg,
        weights: Annotated[str, typer.Option(help="An archdsl run directory (its best checkpoint, "
                                                  "verified) or a .safetensors/.pth file.")],
        data: Annotated[str, typer.Option(help="An ImageFolder directory (DIR/<split>/<class>/...), "
                                               "WebDataset shards ('val-{000000..000007}.tar') or "
                                               "`digits` (its val split, as training has it).")],
        layout: Annotated[Optional[str], typer.Option(help="Names in the weights file: archdsl (default), "
                                                           "official, timm or torchvision.")] = None,
        split: Annotated[str, typer.Option(help="The folder of DIR to score.")] = "val",
        batch: Annotated[int, typer.Option(help="Images per batch.", min=1)] = 64,
        workers: Annotated[Optional[int], typer.Option(help="DataLoader worker processes "
                                                            "(default min(4, CPUs)).", min=0)] = None,
        json_: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
        out: Annotated[Optional[Path], typer.Option(help="Write OUT/confusion.png and "
                                                         "OUT/scores.json.")] = None,
        checkpoint: Annotated[str, typer.Option(help="For a run directory: its best, last or "
                                                     "EMA (ema) weights.")] = "best",
        device: Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1 ... (default: the "
                                                           "local GPU if any).")] = None,
        mean: Annotated[Optional[str], typer.Option(help="Normalization mean per channel, e.g. "
                                                         "0.485,0.456,0.406 (default: what the "
                                                         "weights were trained with).")] = None,
        std: Annotated[Optional[str], typer.Option(help="Normalization std per channel.")] = None,
        crop_pct: Annotated[Optional[float], typer.Option(help="Resize the shorter side to "
                                                               "input/crop_pct, then centre-crop "
                                                               "(default: the recipe's, 0.875).")] = None,
        set_: SetOpt = None,
    ) -> None:
        """Score weights on a split: top-1, top-5, per-class accuracy, a confusion matrix."""
        from ..evaluate import evaluate
        from ..lang.errors import ArchError

        if layout is not None and layout not in LAYOUTS:
            usage(f"--layout takes {', '.join(LAYOUTS)}, not `{layout}`")
        if checkpoint not in ("best", "last", "ema"):
            usage(f"--checkpoint takes best, last or ema, not `{checkpoint}`")
        if crop_pct is not None and not 0 < crop_pct <= 1:
            usage(f"--crop-pct takes a number in (0, 1], not {crop_pct}")
        m, s = _floats("--mean", mean), _floats("--std", std)
        bar = None
        try:
            sets = overrides(set_)
            bar = _progress() if not json_ and sys.stderr.isatty() else None
            scores = evaluate(spec, weights, data=data, layout=layout, split=split, batch=batch,
                              workers=workers, out=out, which=checkpoint, device=device, mean=m, std=s,
                              crop_pct=crop_pct, on_batch=bar.update if bar else None, **sets)
        except ArchError as e:
            if bar:
                bar.close()
            fail(e)
        if bar:
            bar.close()
        if json_:
            print(json.dumps(scores.to_json()))
            return
        _print(scores)


def _print(s) -> None:
    bad = f", {s.bad_images} unreadable image{'s' if s.bad_images != 1 else ''} skipped" if s.bad_images else ""
    say(f"{s.network} ({'x'.join(map(str, s.input))}) on {s.data} [{s.split}]: {s.images} images, "
        f"{len(s.class_names)} classes{bad}")
    say(f"weights {s.weights} (layout {s.layout}); crop_pct {s.crop_pct:g} {s.interpolation}, mean "
        f"{', '.join(f'{v:.4g}' for v in s.mean)}, std {', '.join(f'{v:.4g}' for v in s.std)}")
    for note in s.notes:
        say(f"  note: {note}")
    top5 = "top-5" if s.top5_k == 5 else f"top-{s.top5_k} (of {s.top5_k} classes)"
    say(("top-1 ", "bold"), (f"{100 * s.top1:.2f}%", "bold"), f"   {top5} {100 * s.top5:.2f}%   "
        f"{s.images_per_s:.1f} img/s ({s.seconds:.1f} s)")
    rows = sorted(range(len(s.class_names)), key=lambda i: (s.per_class[i] is None, s.per_class[i] or 0, i))
    shown = rows[:SHOWN_CLASSES]
    width = min(24, max(len(n) for n in s.class_names))
    say("per class" + (f" (the {SHOWN_CLASSES} lowest)" if len(rows) > SHOWN_CLASSES else "") + ":")
    for i in sorted(shown):
        acc = "-" if s.per_class[i] is None else f"{100 * s.per_class[i]:.2f}%"
        say(f"  {s.class_names[i][:width]:<{width}}  {acc:>7}  of {s.per_class_images[i]}")
    if len(rows) > SHOWN_CLASSES:
        say(f"  ... {len(rows) - SHOWN_CLASSES} more in --json / --out's scores.json")
    for path, why in s.bad[:5]:
        say(f"  skipped {path}: {why}")
    if len(s.bad) > 5:
        say(f"  ... {len(s.bad) - 5} more skipped (listed in --json)")
    if s.figure:
        say(f"confusion matrix: {s.figure}")


class _progress:
    """A transient bar on stderr while batches are scored (terminal only)."""

    def __init__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        from .common import err

        self.p = Progress(BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err,
                          transient=True)
        self.task = None

    def update(self, done: int, total: int) -> None:
        if self.task is None:
            self.p.start()
            self.task = self.p.add_task("eval", total=total)
        self.p.update(self.task, completed=done)

    def close(self) -> None:
        if self.task is not None:
            self.p.stop()

