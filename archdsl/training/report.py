"""What a person sees during training: a progress bar per epoch (rich), one summary line per
epoch, OUT/metrics.jsonl and OUT/curves.png rewritten after every epoch, and a final line.

Only the main process reports. The files are rewritten whole from the run's history (which
checkpoints carry), so a resumed run's metrics have no duplicated or missing epochs.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from ..lang.errors import visible
from .checkpoint import atomic_write


def pct(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}%"


class Reporter:
    def __init__(self, out: Path, enabled: bool, quiet: bool = False):
        self.out, self.enabled, self.quiet = Path(out), enabled, quiet
        self.console = Console(stderr=True, highlight=False)
        self.progress: Progress | None = None
        self.task = None

    def line(self, text: str) -> None:
        if self.enabled and not self.quiet:
            self.console.print(visible(text), markup=False, soft_wrap=True)

    def warn(self, text: str) -> None:
        """A warning: shown even with --quiet."""
        if self.enabled:
            self.console.print(visible(f"warning: {text}"), markup=False, soft_wrap=True)

    # ---- the per-epoch bar
    def start_epoch(self, epoch: int, epochs: int, batches: int, done: int = 0) -> None:
        if not (self.enabled and not self.quiet and self.console.is_terminal):
            return
        self.progress = Progress(
            TextColumn(f"epoch {epoch + 1}/{epochs}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  lr {task.fields[lr]}  {task.fields[ips]} img/s"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=True)
        self.progress.start()
        self.task = self.progress.add_task("train", total=batches, completed=done,
                                           loss="-", lr="-", ips="-")

    def step(self, done: int, loss: float, lr: float, ips: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=done, loss=f"{loss:.4f}", lr=f"{lr:.2e}",
                                 ips=f"{ips:.0f}")

    def end_epoch(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    # ---- per-epoch outputs
    def epoch(self, row: dict, epochs: int, has_ema: bool) -> None:
        ema = f"  ema_acc {pct(row.get('val_acc_ema'))}" if has_ema else ""
        self.line(f"epoch {row['epoch']}/{epochs}  train_loss {row['train_loss']:.4f}  "
                  f"val_loss {row['val_loss']:.4f}  val_acc {pct(row['val_acc'])}{ema}  "
                  f"lr {row['lr']:.2e}  {row['images_per_s']:.0f} img/s  {row['seconds']:.1f}s")

    def write_files(self, history: list[dict]) -> None:
        if not self.enabled:
            return
        text = "".join(json.dumps(r) + "\n" for r in history)
        atomic_write(self.out / "metrics.jsonl", lambda f: f.write(text.encode()))
        if history:
            self._plot(history)

    def _plot(self, history: list[dict]) -> None:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        ep = [r["epoch"] for r in history]
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
        a.plot(ep, [r["train_loss"] for r in history], "o-", label="train")
        a.plot(ep, [r["val_loss"] for r in history], "o-", label="val")
        a.set(xlabel="epoch", ylabel="loss", title="loss")
        b.plot(ep, [100 * r["val_acc"] for r in history], "o-", label="model")
        if any(r.get("val_acc_ema") is not None for r in history):
            b.plot(ep, [100 * (r.get("val_acc_ema") or 0) for r in history], "o-", label="EMA")
        b.set(xlabel="epoch", ylabel="val accuracy (%)", title="validation accuracy")
        for ax in (a, b):
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        atomic_write(self.out / "curves.png", lambda f: fig.savefig(f, format="png", dpi=100))
        plt.close(fig)
