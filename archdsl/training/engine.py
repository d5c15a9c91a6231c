"""The training loop: one process or one of many under torchrun.

    for each epoch:  for each batch: augment -> forward (autocast) -> loss -> backward
                       every `accumulate` batches: [all processes agree: finite? stop?]
                         clip -> optimizer step -> schedule step -> EMA update
                         [checkpoint every N steps; on SIGINT/SIGTERM save and stop]
                     evaluate (model and EMA) -> history -> checkpoint -> metrics files

Resuming: a checkpoint is only ever taken at an optimizer-step boundary and carries the
position in the epoch, the per-process RNG states and the running sums of the epoch, so the
resumed run replays exactly the batches, augmentations and drop-path masks it would have seen.
"""
from __future__ import annotations

import itertools
import math
import signal
import threading
import time
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Sampler, Subset

from ..lang.errors import TrainError
from ..lang.network import canonical, first_difference
from ..lang.recipe import TrainRecipe
from . import checkpoint as ckpt
from .augment import BatchAugment, Normalize, loss_fn
from .data import DataBundle, to_float
from .distributed import Dist
from .report import Reporter, pct
from .schedule import build_optimizer, build_scheduler
from .state import rng_state, seed_everything, set_rng_state

STATE_FORMAT = 1
EVAL_BATCH = 256
# Recipe fields that change how a run is executed or saved, never what it computes.
HARMLESS = {"channels_last", "checkpoint_every"}


class Interrupted(TrainError):
    """SIGINT or SIGTERM arrived; a checkpoint was saved and the run stopped."""

    code = "E753"

    def __init__(self, signum: int, checkpoint: Path, epoch: int, step: int):
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name} at epoch {epoch}, step {step}; saved {checkpoint}",
                         hint="run the same command with --resume to continue")
        self.signal, self.checkpoint = signum, checkpoint

    @property
    def exit_code(self) -> int:
        return 128 + self.signal


@dataclass
class TrainResult:
    history: list[dict]
    model: nn.Module
    checkpoint: Path          # model.safetensors of the last checkpoint
    out: Path
    best_acc: float = 0.0
    best_epoch: int = 0
    best: Path | None = None  # weights at the best validation accuracy
    recipe: TrainRecipe | None = None
    network: object = None
    notes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:  # views in training/views.py
        from .views import result_text
        return result_text(self)

    def _repr_html_(self) -> str:
        from .views import result_html
        return result_html(self)


class SkipSampler(Sampler):
    """A sampler with its first `skip` indices dropped: where a resumed epoch picks up."""

    def __init__(self, inner: Sampler):
        self.inner, self.skip = inner, 0

    def __iter__(self):
        return itertools.islice(iter(self.inner), self.skip, None)

    def __len__(self) -> int:
        return len(self.inner) - self.skip  # type: ignore[arg-type]


@contextmanager
def stop_signals():
    """SIGINT/SIGTERM set a flag the loop checks at each step; a second SIGINT stops at once."""
    got: dict[str, int | None] = {"signal": None}
    if threading.current_thread() is not threading.main_thread():
        yield got
        return

    def handler(signum, frame):
        if got["signal"] is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        got["signal"] = signum

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield got
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class Trainer:
    def __init__(self, network, model_builder, recipe: TrainRecipe, data: DataBundle, out: Path,
                 seed: int, dist: Dist, reporter: Reporter, resume: bool, force: bool = False):
        self.network, self.recipe, self.data, self.out = network, recipe, data, Path(out)
        self.seed, self.dist, self.report = seed, dist, reporter
        d, r = dist, recipe
        if r.batch % d.world:
            raise TrainError(f"batch {r.batch} does not split over {d.world} processes",
                             hint=f"use a multiple of {d.world}, e.g. --set train.batch="
                                  f"{d.world * max(1, r.batch // d.world)}", code="E754")
        self.local_batch = r.batch // d.world

        self._build_model(model_builder)
        # Each process augments differently; all of them reproducibly.
        seed_everything(seed + 1_000_003 * (d.rank + 1))
        self._build_data()
        self.steps_per_epoch = math.ceil(self.batches / r.accumulate)
        self.optimizer = build_optimizer(self.model, r)
        self.scheduler = build_scheduler(self.optimizer, r, self.steps_per_epoch)
        self.autocast = torch.autocast(d.device.type, dtype=torch.bfloat16,
                                       enabled=r.precision == "bf16")

        self.epoch, self.batch, self.step = 0, 0, 0
        self.history: list[dict] = []
        self.best_acc, self.best_epoch = -1.0, 0
        self.partial = {"loss_sum": 0.0, "batches": 0, "images": 0, "seconds": 0.0}
        self.last_ckpt: Path | None = None
        self._start(resume, force)

    def _build_model(self, model_builder) -> None:
        d, r = self.dist, self.recipe
        seed_everything(self.seed)  # the same initial weights in every process
        self.model = model_builder().to(d.device)
        if r.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.ema = None
        if r.ema is not None:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
            self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(r.ema),
                                     use_buffers=True)
        self.net = self.model  # what the training step calls: DDP's wrapper under torchrun
        if d.active:
            from torch.nn.parallel import DistributedDataParallel as DDP
            # Size-1 dims (a depthwise conv's in-channels) give equal tensors different strides.
            warnings.filterwarnings("ignore", message="Grad strides do not match bucket view")
            self.net = DDP(self.model, device_ids=[d.device.index] if d.device.type == "cuda" else None)

    def _build_data(self) -> None:
        d, r, data = self.dist, self.recipe, self.data
        self.augment = BatchAugment(r, data.shape, data.mean, data.std, self.network.classes).to(d.device)
        self.normalize = Normalize(data.mean, data.std).to(d.device)
        self.sampler = DistributedSampler(data.train, num_replicas=d.world, rank=d.rank,
                                          shuffle=True, seed=self.seed, drop_last=True)
        self.skipper = SkipSampler(self.sampler)
        # A loader-owned generator keeps DataLoader from drawing on the global RNG.
        self.loader = DataLoader(data.train, batch_size=self.local_batch, sampler=self.skipper,
                                 drop_last=True, num_workers=data.workers,
                                 generator=torch.Generator().manual_seed(self.seed),
                                 pin_memory=d.device.type == "cuda")
        self.batches = len(self.sampler) // self.local_batch
        if self.batches == 0:
            fit = 2 ** int(math.log2(max(1, len(data.train) // 4)))
            raise TrainError(f"batch {r.batch} is larger than the {len(data.train)} training images"
                             + (f" ({len(self.sampler)} per process)" if d.active else ""),
                             hint=f"lower it, e.g. --set train.batch={fit}", code="E754")
        self.val_loader = DataLoader(Subset(data.val, range(d.rank, len(data.val), d.world)),
                                     batch_size=EVAL_BATCH, num_workers=data.workers)

    # ------------------------------------------------------------------ resume
    def _start(self, resume: bool, force: bool = False) -> None:
        if self.dist.main:
            ckpt.clean(self.out)  # under the run lock: what killed writes and prunes left
        candidates = ckpt.step_dirs(self.out)
        if not candidates:
            if resume:
                self.report.line(f"no checkpoint in {self.out}; starting a new run")
            return
        if not resume:
            raise TrainError(f"{self.out} already holds a run ({candidates[-1].name})",
                             hint="pass --resume to continue it, or choose another --out",
                             code="E755")
        problems: list[str] = []
        found = ckpt.newest_verified(self.out, quiet=True, problems=problems)
        for problem in problems:
            self.report.warn(f"checkpoint {problem}; falling back to an older one")
        if found is None:
            raise TrainError(f"no checkpoint in {self.out} verifies: " + "; ".join(problems),
                             hint="the run cannot be resumed; train afresh in another --out",
                             code="E752")
        model_sd, state, ema_sd = ckpt.load(found, verified=True)
        self._check_state(found, state, force)
        missing = set(self.model.state_dict()) ^ set(model_sd)
        if missing:
            raise TrainError(f"{found} does not fit the network: {len(missing)} keys differ "
                             f"(e.g. {sorted(missing)[0]})", code="E756")
        try:
            self.model.load_state_dict(model_sd)
            if self.ema is not None:
                if ema_sd is None:
                    raise TrainError(f"{found} has no {ckpt.EMA} though the recipe keeps an EMA",
                                     code="E752")
                self.ema.load_state_dict(ema_sd)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.epoch, self.batch, self.step = int(state["epoch"]), int(state["batch"]), int(state["step"])
            self.history = list(state["history"])
            self.best_acc, self.best_epoch = float(state["best_acc"]), int(state["best_epoch"])
            mine = state["ranks"][self.dist.rank]
            self.partial = dict(mine["partial"])
            self._resume_rng = mine["rng"]
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
            # same names, other shapes; or a state.pt that lacks what this version writes
            detail = str(e).strip().splitlines()[-1].strip() if str(e).strip() else ""
            raise TrainError(f"{found} does not fit this run: {type(e).__name__} {detail}".rstrip(),
                             code="E756" if isinstance(e, RuntimeError) else "E752") from None
        if self.dist.main:
            # Newer checkpoints that failed verification must not be picked up by a later resume.
            for bad in ckpt.step_dirs(self.out):
                if int(bad.name[5:]) > int(found.name[5:]):
                    self.report.warn(f"set aside {bad} as {ckpt.set_aside(bad).name}")
            # best and metrics as of this checkpoint (a kill may have left them out of step)
            ckpt.publish_best(self.out, found)
            self.report.write_files(self.history)
        self.last_ckpt = found
        self.report.line(f"resuming {found} (epoch {self.epoch + 1}, batch {self.batch}/{self.batches})")

    def _check_state(self, found: Path, state: dict, force: bool) -> None:
        """The checkpoint was written by this version, for this network, recipe, seed and
        process count (with `force`, the network may differ where its weights still fit)."""
        if state.get("format") != STATE_FORMAT:
            raise TrainError(f"{found}: unknown checkpoint format {state.get('format')}", code="E752")
        try:
            world, seed, saved = state["world"], state["seed"], TrainRecipe(**state["recipe"])
        except Exception as e:  # a key missing, or a recipe this version rejects
            raise TrainError(f"{found}: {ckpt.STATE} is not a training state this version reads "
                             f"({type(e).__name__}: {e})".splitlines()[0], code="E752") from None
        if world != self.dist.world:
            raise TrainError(f"{found} was written by {world} process(es); this run has "
                             f"{self.dist.world}",
                             hint=f"resume with --nproc_per_node={world} (processes draw "
                                  "different random numbers, so the count must match)", code="E756")
        diff = [f"{k} {getattr(saved, k)} -> {getattr(self.recipe, k)}"
                for k in TrainRecipe.model_fields
                if k not in HARMLESS and getattr(saved, k) != getattr(self.recipe, k)]
        if diff or seed != self.seed:
            what = ", ".join(diff + ([f"seed {seed} -> {self.seed}"] if seed != self.seed else []))
            raise TrainError(f"cannot resume {found}: the run started with different settings: {what}",
                             hint="resume with the command that started the run, or train afresh "
                                  "in another --out", code="E756")
        theirs = state.get("network_structure")
        changed = first_difference(theirs, canonical(self.network)) if theirs is not None else None
        if changed and not force:
            raise TrainError(f"cannot resume {found}: the network is not the one it was trained with "
                             f"({changed})",
                             hint="resume with the spec and --set values that started the run; "
                                  "--force resumes anyway where the weights still fit", code="E756")
        if changed:
            self.report.warn(f"resuming with another network ({changed}) because of --force")

    # ------------------------------------------------------------------ checkpoint
    def save(self, improved: bool = False) -> Path:
        """Write a checkpoint (`improved`: the current weights are the new best), then derive
        OUT/best.safetensors from it. The caller writes metrics.jsonl, from the same history
        the checkpoint carries; a resume re-derives both."""
        d = self.dist
        mine = {"rng": rng_state(), "partial": dict(self.partial)}
        ranks = d.gather(mine)
        path = None
        if d.main:
            state = {
                "format": STATE_FORMAT, "epoch": self.epoch, "batch": self.batch, "step": self.step,
                "world": d.world, "seed": self.seed, "recipe": self.recipe.model_dump(),
                "network": self.network.name, "network_structure": canonical(self.network),
                "data_order": {"sampler": "DistributedSampler", "seed": self.seed,
                               "epoch": self.epoch, "position": self.batch * self.local_batch},
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "history": self.history, "best_acc": self.best_acc, "best_epoch": self.best_epoch,
                "ranks": ranks,
            }
            model_sd = self.model.state_dict()
            path = ckpt.save(self.out, self.step, model_sd, state,
                             self.ema.state_dict() if self.ema is not None else None,
                             best_sd=model_sd if improved else None, best_from=self.last_ckpt,
                             meta={"epoch": self.epoch, "best_epoch": self.best_epoch,
                                   "best_acc": self.best_acc})
            ckpt.publish_best(self.out, path)
        d.barrier()
        self.last_ckpt = path or ckpt.latest(self.out)
        return self.last_ckpt  # type: ignore[return-value]

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> tuple[float, float]:
        was = model.training
        model.eval()
        loss, correct, n = 0.0, 0.0, 0.0
        for x, y in self.val_loader:
            x = self.normalize(to_float(x.to(self.dist.device)))
            y = y.to(self.dist.device)
            if self.recipe.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with self.autocast:
                logits = model(x).float()
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            n += len(y)
        model.train(was)
        loss, correct, n = self.dist.all_sum([loss, correct, n])
        return loss / max(n, 1), correct / max(n, 1)

    # ------------------------------------------------------------------ the loop
    def run(self) -> TrainResult:
        with stop_signals() as stop:
            self._stop = stop
            if getattr(self, "_resume_rng", None) is not None:
                set_rng_state(self._resume_rng)
            while self.epoch < self.recipe.epochs:
                self.train_epoch()
                self.end_epoch()
        return self.result()

    def _check(self, bad: bool) -> tuple[bool, bool]:
        """Whether any process saw a non-finite loss, and whether any was asked to stop."""
        bad, stopping = self.dist.any([bad, self._stop["signal"] is not None])
        return bad, stopping

    def train_epoch(self) -> None:
        r, d = self.recipe, self.dist
        self.sampler.set_epoch(self.epoch)
        self.skipper.skip = self.batch * self.local_batch
        self.net.train()
        self.report.start_epoch(self.epoch, r.epochs, self.batches, self.batch)
        started = time.perf_counter() - self.partial["seconds"]
        bad = False
        try:
            for b, (x, y) in enumerate(self.loader, start=self.batch):
                x, y = to_float(x.to(d.device, non_blocking=True)), y.to(d.device, non_blocking=True)
                x, target = self.augment(x, y)
                if r.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                boundary = (b + 1) % r.accumulate == 0 or b + 1 == self.batches
                group = min(r.accumulate, self.batches - (b // r.accumulate) * r.accumulate)
                sync = self.net.no_sync() if d.active and not boundary else nullcontext()
                with sync:
                    with self.autocast:
                        logits = self.net(x)
                    loss = loss_fn(logits, target, r.label_smoothing)
                    (loss / group).backward()
                value = loss.item()
                bad |= not math.isfinite(value)
                self.partial["loss_sum"] += value if math.isfinite(value) else 0.0
                self.partial["batches"] += 1
                self.partial["images"] += x.shape[0]
                if not boundary:
                    continue
                bad, stopping = self._check(bad)
                if bad:
                    self._diverged(value)
                lr = self.optimizer.param_groups[0]["lr"]
                if r.clip_grad is not None:
                    nn.utils.clip_grad_norm_(self.model.parameters(), r.clip_grad)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.scheduler.step()
                if self.ema is not None:
                    self.ema.update_parameters(self.model)
                self.step += 1
                self.batch = b + 1
                self.partial["seconds"] = time.perf_counter() - started
                self.partial["lr"] = lr
                self.report.step(self.batch, self.partial["loss_sum"] / self.partial["batches"], lr,
                                 self.partial["images"] * d.world / max(self.partial["seconds"], 1e-9))
                if stopping:
                    self.report.end_epoch()
                    raise Interrupted(self._stop["signal"] or signal.SIGTERM, self.save(),
                                      self.epoch + 1, self.step)
                if r.checkpoint_every and self.step % r.checkpoint_every == 0 and self.batch < self.batches:
                    self.save()
        finally:
            self.report.end_epoch()

    def _diverged(self, value: float) -> None:
        last = ckpt.newest_verified(self.out, quiet=True)
        kept = (f"the last good checkpoint is {last} (verified)" if last is not None
                else "no checkpoint had been saved yet")
        raise TrainError(
            f"loss became {value} at epoch {self.epoch + 1}, step {self.step + 1} "
            f"(lr {self.optimizer.param_groups[0]['lr']:.3g}); stopped, {kept}",
            hint="lower the learning rate (--set train.lr=...), clip gradients "
                 "(--set train.clip_grad=1.0) or lengthen warm-up, and train afresh", code="E757")

    def end_epoch(self) -> None:
        r, d = self.recipe, self.dist
        p = self.partial
        sums = d.all_sum([p["loss_sum"], p["batches"], p["images"]])
        seconds = p["seconds"]
        val_loss, val_acc = self.evaluate(self.model)
        row = {"epoch": self.epoch + 1, "step": self.step,
               "train_loss": sums[0] / max(sums[1], 1), "val_loss": val_loss, "val_acc": val_acc,
               "lr": p.get("lr", self.optimizer.param_groups[0]["lr"]),
               "images_per_s": sums[2] / max(seconds, 1e-9), "seconds": seconds}
        if self.ema is not None:
            row["val_loss_ema"], row["val_acc_ema"] = self.evaluate(self.ema.module)
        self.history.append(row)
        improved = val_acc > self.best_acc
        if improved:
            self.best_acc, self.best_epoch = val_acc, self.epoch + 1
        self.epoch += 1
        self.batch = 0
        self.partial = {"loss_sum": 0.0, "batches": 0, "images": 0, "seconds": 0.0}
        self.save(improved)
        self.report.epoch(row, r.epochs, self.ema is not None)
        self.report.write_files(self.history)
        _, stopping = self._check(False)
        if stopping and self.epoch < r.epochs:
            raise Interrupted(self._stop["signal"] or signal.SIGTERM, self.last_ckpt,
                              self.epoch, self.step)

    def result(self) -> TrainResult:
        assert self.last_ckpt is not None
        best = self.out / "best.safetensors"
        self.report.line(f"best val_acc {pct(self.best_acc)} at epoch {self.best_epoch} · "
                         f"checkpoint {self.last_ckpt / ckpt.MODEL}"
                         + (f" · best weights {best}" if best.exists() else ""))
        return TrainResult(self.history, self.model, self.last_ckpt / ckpt.MODEL, self.out,
                           self.best_acc, self.best_epoch, best if best.exists() else None,
                           self.recipe, self.network)
