"""What a person sees during training, and what a tracker reads.

- On a terminal: a live bar per epoch (rich) with loss, lr, images/s and the share of time spent
  waiting for data. When stderr is not a terminal (SLURM, nohup, `2> log`): a plain line every
  `log_every` optimizer steps instead,

      epoch 1/5  batch 50/112  step 50  loss 1.2345  lr 1.00e-03  812 img/s  data-wait 12.0%

  so a batch log shows progress and data-loading stalls (time blocked on the loader) apart
  from compute.
- One summary line per epoch; OUT/metrics.jsonl and OUT/curves.png rewritten after every epoch
  from the run's history (which checkpoints carry), so a resumed run's metrics have no
  duplicated or missing epochs.
- Trackers (`tracking`): TensorBoard event files in OUT for every run, W&B and MLflow when the
  recipe asks. Every `log_every` steps: `train/loss` (mean over the batches since the last
  point), `train/lr`, `perf/images_per_s` (the epoch's so far), and `perf/data_wait_pct`,
  `perf/data_wait_s` and `perf/compute_s` (over the same batches); every epoch, each number of
  its metrics.jsonl row as `epoch/<name>`; once, the spec as written (`spec/text`), resolved into one file
  (`spec/resolved`), and, when it `extends` a parent, the parent's name (`spec/parent`) and a
  unified diff of the two resolved texts (`spec/diff_vs_parent`). The diff is textual,
  from `lang`'s printer: training may not import `archdsl.diff`, whose semantic diff
  `archdsl diff PARENT SPEC` prints. The x axis is always the optimizer step.

Only the main process reports. Calls the engine makes:

    r = Reporter(out, enabled, quiet, log_every=50, track=("mlflow",))
    r.begin(network, recipe, step)        # opens the trackers (step > 0: a resumed run)
    r.start_epoch(epoch, epochs, batches, done)
    r.step(done, loss, lr, ips, wait_s=..., step=...)   # after each optimizer step
    r.end_epoch(); r.epoch(row, epochs, has_ema); r.write_files(history)
    r.close()

`step`'s `loss` and `ips` are the epoch's so far, `wait_s` the seconds that step spent blocked
on the loader; the reporter sums the waits over the epoch and takes differences between
logged points for per-interval figures.
"""
from __future__ import annotations

import difflib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from ..lang.errors import ArchError, visible
from .checkpoint import atomic_write
from .tracking import Tracker, open_trackers

LOG_EVERY = 50


def pct(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}%"


@dataclass
class _Mark:
    """The epoch's cumulative figures at one step call."""

    done: int
    loss_sum: float
    seconds: float  # since start_epoch
    wait_s: float


class Reporter:
    def __init__(self, out: Path, enabled: bool, quiet: bool = False, *, log_every: int = LOG_EVERY,
                 track=(), console: Console | None = None):
        self.out, self.enabled, self.quiet = Path(out), enabled, quiet
        self.log_every, self.track = max(1, int(log_every)), track
        self.console = console or Console(stderr=True, highlight=False)
        self.progress: Progress | None = None
        self.task = None
        self.trackers: list[Tracker] | None = None
        self.epochs = self.batches = self.epoch_index = 0
        self.calls = 0  # step calls when the engine gives no global step
        self.mark: _Mark | None = None  # the last logged point of this epoch
        self.epoch_started, self.waited = time.perf_counter(), 0.0  # the epoch's clock and waits

    def line(self, text: str) -> None:
        if self.enabled and not self.quiet:
            self.console.print(visible(text), markup=False, soft_wrap=True)

    def warn(self, text: str) -> None:
        """A warning: shown even with --quiet."""
        if self.enabled:
            self.console.print(visible(f"warning: {text}"), markup=False, soft_wrap=True)

    # ---- trackers
    def begin(self, network=None, recipe=None, step: int = 0) -> None:
        """Open the trackers and record the spec (once per process lifetime of the run)."""
        if not self.enabled or self.trackers is not None:
            return
        config = {"recipe": recipe.model_dump(mode="json")} if recipe is not None else {}
        if network is not None:
            config |= {"network": network.name, "input": list(network.input), "classes": network.classes}
        self.trackers = open_trackers(self.out, self.track, name=self.out.name, config=config,
                                      step=step, warn=self.warn)
        if step == 0 and network is not None:
            for name, text in spec_texts(network).items():
                self._each(lambda t: t.text(name, text, 0))
        if step == 0 and recipe is not None:
            text = json.dumps(recipe.model_dump(mode="json"), indent=1)
            self._each(lambda t: t.text("recipe", text, 0))

    def _each(self, call) -> None:
        """`call` on every tracker. One that fails mid-run (a tracking server gone, a full disk)
        is warned about once and dropped: losing a tracker must not lose the run."""
        if self.trackers is None:
            self.begin()
        for tracker in list(self.trackers or ()):
            try:
                call(tracker)
            except Exception as e:  # noqa: BLE001 - any tracker's failure, whatever its kind
                self.trackers.remove(tracker)
                detail = str(e).strip().splitlines()[0] if str(e).strip() else ""
                self.warn(f"{type(tracker).__name__} tracking stopped: {type(e).__name__}: {detail}"[:300]
                          + "; the run goes on without it (metrics.jsonl is complete)")

    def close(self) -> None:
        if self.trackers is not None:
            self._each(lambda t: t.close())
            self.trackers = []

    # ---- the per-epoch bar (terminal) or progress lines (anything else)
    def start_epoch(self, epoch: int, epochs: int, batches: int, done: int = 0) -> None:
        self.epoch_index, self.epochs, self.batches, self.mark = epoch, epochs, batches, None
        self.epoch_started, self.waited = time.perf_counter(), 0.0
        if not (self.enabled and not self.quiet and self.console.is_terminal):
            return
        self.progress = Progress(
            TextColumn(f"epoch {epoch + 1}/{epochs}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  lr {task.fields[lr]}  {task.fields[ips]} img/s  "
                       "data-wait {task.fields[wait]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=True)
        self.progress.start()
        self.task = self.progress.add_task("train", total=batches, completed=done,
                                           loss="-", lr="-", ips="-", wait="-")

    def step(self, done: int, loss: float, lr: float, ips: float, wait_s: float = 0.0, *,
             step: int | None = None) -> None:
        """After an optimizer step: `done` batches of the epoch, the epoch's mean `loss`, its
        images/s (end to end), the seconds this step spent blocked on the loader (`wait_s`,
        summed over accumulated batches) and the run's optimizer `step` (counted here when not
        given). The data-wait share is the epoch's waits over its wall time since `start_epoch`."""
        if not self.enabled:
            return
        self.calls += 1
        step = self.calls if step is None else step
        self.waited += max(0.0, float(wait_s))
        seconds = time.perf_counter() - self.epoch_started
        share = min(1.0, self.waited / seconds) if seconds > 0 else 0.0
        if self.progress is not None:
            self.progress.update(self.task, completed=done, loss=f"{loss:.4f}", lr=f"{lr:.2e}",
                                 ips=f"{ips:.0f}", wait=f"{100 * share:.0f}%")
        if step % self.log_every:
            return
        now = _Mark(done, loss * done, seconds, self.waited)
        values = {**_interval(self.mark, now), "train/lr": lr, "perf/images_per_s": ips}
        self.mark = now
        if self.progress is None and not self.quiet:
            self.line(f"epoch {self.epoch_index + 1}/{self.epochs}  batch {done}/{self.batches}  "
                      f"step {step}  loss {loss:.4f}  lr {lr:.2e}  {ips:.0f} img/s  "
                      f"data-wait {100 * share:.1f}%")
        self._each(lambda t: t.scalars(values, step))

    def end_epoch(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    # ---- per-epoch outputs
    def epoch(self, row: dict, epochs: int, has_ema: bool) -> None:
        ema = f"  ema_acc {pct(row.get('val_acc_ema'))}" if has_ema else ""
        wait = row.get("data_wait_s")
        waited = (f"  data-wait {100 * wait / row['seconds']:.1f}%"
                  if wait is not None and row.get("seconds") else "")
        self.line(f"epoch {row['epoch']}/{epochs}  train_loss {row['train_loss']:.4f}  "
                  f"val_loss {row['val_loss']:.4f}  val_acc {pct(row['val_acc'])}{ema}  "
                  f"lr {row['lr']:.2e}  {row['images_per_s']:.0f} img/s{waited}  {row['seconds']:.1f}s")
        if not self.enabled:
            return
        values = {f"epoch/{k}": float(v) for k, v in row.items()
                  if k not in ("epoch", "step") and isinstance(v, (int, float)) and math.isfinite(v)}
        if wait is not None and row.get("seconds"):
            values["epoch/data_wait_pct"] = 100 * wait / row["seconds"]
        step = int(row.get("step", row["epoch"]))
        self._each(lambda t: t.scalars(values, step))

    def write_files(self, history: list[dict]) -> None:
        if not self.enabled:
            return
        if self.trackers:
            self._each(lambda t: t.flush())
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


def _interval(before: _Mark | None, now: _Mark) -> dict[str, float]:
    """Loss and time split over the batches since the last point (the epoch's start for its first)."""
    b = before or _Mark(0, 0.0, 0.0, 0.0)
    batches, seconds = now.done - b.done, now.seconds - b.seconds
    wait = max(0.0, now.wait_s - b.wait_s)
    return {"train/loss": (now.loss_sum - b.loss_sum) / max(batches, 1),
            "perf/data_wait_pct": min(100.0, 100 * wait / seconds) if seconds > 0 else 0.0,
            "perf/data_wait_s": wait, "perf/compute_s": max(0.0, seconds - wait)}


def spec_texts(network) -> dict[str, str]:
    """The spec as written, resolved into one file, and its parent's name and the diff of the
    two resolved texts when it extends one. A text that cannot be made is left out with a note."""
    from ..lang.flatten import flatten
    from ..lang.printer import format_spec

    texts: dict[str, str] = {}
    try:
        texts["spec/text"] = Path(network.path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError):
        pass  # a spec given as text (`<string>`) or a file gone since
    try:
        resolved = format_spec(flatten(network))
    except ArchError as e:
        texts["spec/resolved"] = f"(not printable: {e.message})"
        return texts
    texts["spec/resolved"] = resolved
    if network.chain:
        parent = network.chain[0]
        texts["spec/parent"] = parent
        try:
            from ..lang.resolve import read_spec, resolve
            from ..lang.specpath import find_spec

            theirs = format_spec(flatten(resolve(read_spec(find_spec(parent, Path(network.path).parent)))))
        except ArchError as e:
            texts["spec/diff_vs_parent"] = f"(the parent `{parent}` could not be read: {e.message})"
            return texts
        texts["spec/diff_vs_parent"] = "".join(difflib.unified_diff(
            theirs.splitlines(keepends=True), resolved.splitlines(keepends=True),
            fromfile=parent, tofile=network.name)) or "(no difference)"
    return texts
