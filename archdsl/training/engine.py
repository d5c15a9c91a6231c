"""The training loop: one process or one of many under torchrun.

    for each epoch:  for each batch (decoded and transformed per image in DataLoader workers):
                       batch stage (normalize, erase, mix) -> forward (autocast) -> loss -> backward
                       every `accumulate` batches: [all processes agree: finite? stop?]
                         clip -> optimizer step -> schedule step -> EMA update
                         [checkpoint every N steps; on SIGINT/SIGTERM save and stop]
                     evaluate (model and EMA) -> history -> checkpoint -> metrics files

Resuming: a checkpoint is only ever taken at an optimizer-step boundary and carries the
position in the epoch (global samples consumed), the per-process RNG states and the running
sums of the epoch, so the resumed run replays exactly the batches, augmentations and drop-path
masks it would have seen (per-image augmentation is seeded per sample, archdsl.data.seeding).
A resume on another number of processes re-splits the rest of the epoch's order from the
global position (archdsl.data.sampler) and keeps everything else; the batch-level random draws
of processes that did not exist before start from fresh seeds (said at the start).
A checkpoint also records its data's identity (path, file count, a fingerprint of the listing):
a resume on other data is refused without --force.
"""
from __future__ import annotations

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
from torch.utils.data import DataLoader, Subset

from ..data.collate import collate
from ..data.sampler import EpochSampler
from ..lang.errors import DataError, TrainError
from ..lang.network import canonical, first_difference
from ..lang.recipe import TrainRecipe
from . import checkpoint as ckpt
from .augment import BatchStage, Normalize, loss_fn
from .data import DataBundle
from .distributed import Dist
from .layer_decay import assign_layers, describe
from .report import Reporter, pct
from .schedule import build_optimizer, build_scheduler, schedule_lr
from .state import rng_state, seed_everything, set_rng_state

STATE_FORMAT = 1
EVAL_BATCH = 256
PREFETCH = 4  # training batches each DataLoader worker keeps ready (evaluation: 2, torch's default)
# Recipe fields that change how a run is executed or saved, never what it computes.
HARMLESS = {"channels_last", "checkpoint_every", "workers", "log_every", "track"}


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


def fresh_partial() -> dict:
    """The running sums of an epoch: what a checkpoint carries to resume mid-epoch."""
    return {"loss_sum": 0.0, "batches": 0, "images": 0, "seconds": 0.0, "bad": 0, "wait_s": 0.0}


class BadImageStop(Exception):
    """An image could not be decoded and --skip-bad-images is off: the loop saves a checkpoint
    and stops with `error()` (E702, naming the file)."""

    def __init__(self, path: str, why: str, split: str):
        super().__init__(path)
        self.path, self.why, self.split = path, why, split
        self.checkpoint: Path | None = None

    def error(self) -> DataError:
        saved = f"; saved {self.checkpoint}, resumable" if self.checkpoint else ""
        return DataError(f"cannot decode {self.split} image {self.path}: {self.why}{saved}",
                         hint="replace the file (same name) and run the same command with --resume "
                              "(removed, the data is another: add --force), or add --skip-bad-images to "
                              "leave such images out (counted and logged)",
                         code="E702")


# What state.pt may hold: each value read back is checked before the run uses it.
def check_ranges(found: Path, state: dict, recipe: TrainRecipe, samples: int) -> None:
    """Every number of a training state in its range (a re-hashed state.pt with batch=10**6,
    epoch=-3 or best_acc=nan is refused, not trained on), and the manifest's step equal to the
    directory's name."""
    def bad(what: str) -> TrainError:
        return TrainError(f"{found}: {ckpt.STATE} holds {what}",
                          hint="the checkpoint was altered; resume from another or train afresh",
                          code="E752")

    def integer(key: str, low: int, high: int) -> int:
        v = state.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
            raise bad(f"{key}={v!r}, outside {low}..{high}")
        return v

    epoch = integer("epoch", 0, recipe.epochs)
    integer("step", 0, 1 << 48)
    integer("batch", 0, samples // recipe.batch + 1)  # samples: of one epoch, repeats included
    integer("best_epoch", 0, epoch)
    best = state.get("best_acc")
    if not isinstance(best, float) or not (math.isfinite(best) and -1.0 <= best <= 1.0):
        raise bad(f"best_acc={best!r}, not a finite accuracy")
    position = state.get("data_order", {}).get("position", 0)
    if not isinstance(position, int) or not 0 <= position <= samples:
        raise bad(f"a data position of {position!r}")
    ranks = state.get("ranks")
    if not isinstance(ranks, list) or len(ranks) != state.get("world"):
        raise bad("per-process states that do not match its process count")
    named = int(found.name[5:])
    if named != state["step"]:
        raise bad(f"step {state['step']}, but its directory says {named}")


def leave_signals_to_the_loop(worker_id: int) -> None:
    """In a DataLoader worker: ignore SIGINT and SIGTERM. A terminal's Ctrl-C, `timeout`,
    SLURM and `kill -TERM -PGID` signal the whole process group; a worker killed by them would
    take the run down with a RuntimeError before the loop could save. The loop stops at the next
    step and shuts its workers down itself (and workers exit when their parent dies)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


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
                 seed: int, dist: Dist, reporter: Reporter, resume: bool, force: bool = False,
                 skip_bad: bool = False):
        self.network, self.recipe, self.data, self.out = network, recipe, data, Path(out)
        self.seed, self.dist, self.report, self.skip_bad = seed, dist, reporter, skip_bad
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
        if r.layer_decay != 1.0:
            self.report.line("  " + describe(assign_layers(self.model, r.layer_group), r.layer_decay, r.layer_group))
        self.autocast = torch.autocast(d.device.type, dtype=torch.bfloat16,
                                       enabled=r.precision == "bf16")

        self.epoch, self.batch, self.step = 0, 0, 0
        self.position = 0  # global samples of the epoch's order consumed before this process started it
        self._segment = (0, 0)  # (batch, position) where this process started the epoch
        self.history: list[dict] = []
        self.best_acc, self.best_epoch = -1.0, 0
        self.partial = fresh_partial()
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
        self.augment = BatchStage(r, data.mean, data.std, self.network.classes).to(d.device)
        self.normalize = Normalize(data.mean, data.std).to(d.device)
        self.sampler = EpochSampler(len(data.train), world=d.world, rank=d.rank, seed=self.seed,
                                    repeats=r.repeats, drop_last=True)
        self.loader = self._loader(data.train, self.sampler, self.local_batch)
        self.batches = len(self.sampler) // self.local_batch
        if self.batches == 0:
            fit = 2 ** int(math.log2(max(1, len(data.train) // 4)))
            raise TrainError(f"batch {r.batch} is larger than the {len(data.train)} training images"
                             + (f" ({len(self.sampler)} per process)" if d.active else ""),
                             hint=f"lower it, e.g. --set train.batch={fit}", code="E754")
        self.val_loader = self._loader(Subset(data.val, range(d.rank, len(data.val), d.world)), None,
                                       EVAL_BATCH)

    def _loader(self, dataset, sampler, batch: int) -> DataLoader:
        """Workers decode and transform (persistent across epochs, PREFETCH batches ahead);
        pinned memory and non-blocking copies on CUDA. A loader-owned generator keeps the
        DataLoader from drawing on the global RNG."""
        workers = self.data.workers
        # The evaluation loader draws its workers' base seed from the global generator, as it
        # always has (one draw per evaluation), so runs reproduce the figures measured before.
        return DataLoader(dataset, batch_size=batch, sampler=sampler, drop_last=sampler is not None,
                          num_workers=workers, collate_fn=collate, persistent_workers=workers > 0,
                          prefetch_factor=(PREFETCH if sampler is not None else 2) if workers > 0 else None,
                          generator=torch.Generator().manual_seed(self.seed) if sampler is not None else None,
                          pin_memory=self.dist.device.type == "cuda",
                          worker_init_fn=leave_signals_to_the_loop if workers > 0 else None)

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
        check_ranges(found, state, self.recipe, len(self.data.train) * self.recipe.repeats)
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
            self._resume_data(found, state)
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
        self.report.line(f"resuming {found} (epoch {self.epoch + 1}, batch {self.batch}/{self.batches}"
                         f", sample {self.position} of the epoch)")

    def _resume_data(self, found: Path, state: dict) -> None:
        """Where the epoch continues (the global sample position), and this process's RNG and
        running sums. On another number of processes the rest of the epoch's order is re-split
        (the sampler deals it from the position), the epoch's sums move to rank 0, and processes
        the checkpoint has no RNG state for start from fresh seeds."""
        d, ranks = self.dist, state["ranks"]
        position = int(state.get("data_order", {}).get("position", self.batch * self.recipe.batch))
        self.position = position
        world = int(state["world"])
        if world == d.world:
            mine = ranks[d.rank]
            self.partial, self._resume_rng = {**fresh_partial(), **mine["partial"]}, mine["rng"]
        else:
            merged = fresh_partial()
            for r in ranks:
                for k in ("loss_sum", "batches", "images", "bad", "wait_s"):
                    merged[k] += r["partial"].get(k, 0)
                merged["seconds"] = max(merged["seconds"], r["partial"].get("seconds", 0.0))
                merged["lr"] = r["partial"].get("lr", merged.get("lr"))
            self.partial = merged if d.main else {**fresh_partial(), "seconds": merged["seconds"]}
            self._resume_rng = ranks[d.rank]["rng"] if d.rank < len(ranks) else None
            self.report.line(f"resuming a run of {world} process(es) on {d.world}: the rest of epoch "
                             f"{self.epoch + 1} (from sample {position}) is split again over {d.world}; "
                             "weights, optimizer, schedule and history continue"
                             + (f"; processes {len(ranks)}..{d.world - 1} draw batch-level randomness "
                                "from fresh seeds" if d.world > len(ranks) else ""))
        self.sampler.set_epoch(self.epoch)
        self.sampler.set_position(position)
        if world != d.world:  # batches left on this world's split
            self.batch = max(0, self.batches - self.sampler.per_rank() // self.local_batch)

    def _check_state(self, found: Path, state: dict, force: bool) -> None:
        """The checkpoint was written by this version, for this network, recipe, seed and data
        (with `force`, the network and the data may differ where the weights still fit)."""
        if state.get("format") != STATE_FORMAT:
            raise TrainError(f"{found}: unknown checkpoint format {state.get('format')}", code="E752")
        try:
            world, seed, saved = state["world"], state["seed"], TrainRecipe(**state["recipe"])
        except Exception as e:  # a key missing, or a recipe this version rejects
            raise TrainError(f"{found}: {ckpt.STATE} is not a training state this version reads "
                             f"({type(e).__name__}: {e})".splitlines()[0], code="E752") from None
        if not isinstance(world, int) or not 1 <= world <= 1 << 20:
            raise TrainError(f"{found}: {ckpt.STATE} says world={world!r}", code="E752")
        if self.recipe.batch % world:
            raise TrainError(f"{found}: batch {self.recipe.batch} does not split over the {world} "
                             "processes the checkpoint names", code="E752")
        theirs_data, mine_data = state.get("data"), self.data.info.identity
        if theirs_data is not None and mine_data is not None and theirs_data != mine_data:
            what = "; ".join(f"{k} {theirs_data.get(k)} -> {mine_data.get(k)}" for k in mine_data
                             if theirs_data.get(k) != mine_data.get(k))
            if not force:
                raise TrainError(f"cannot resume {found}: it was trained on other data ({what})",
                                 hint="resume with the --data that started the run; --force continues "
                                      "on this data anyway", code="E756")
            self.report.warn(f"resuming on other data ({what}) because of --force")
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
                "data_order": {"sampler": "EpochSampler", "seed": self.seed, "repeats": self.recipe.repeats,
                               "epoch": self.epoch, "position": self.data_position()},
                "data": self.data.info.identity,
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "history": self.history, "best_acc": self.best_acc, "best_epoch": self.best_epoch,
                "ranks": ranks,
            }
            model_sd = self.model.state_dict()
            path = ckpt.save(self.out, self.step, model_sd, state,
                             self.ema.state_dict() if self.ema is not None else None,
                             best_sd=model_sd if improved else None, best_from=self.last_ckpt,
                             meta={"epoch": self.epoch, "best_epoch": self.best_epoch,
                                   "best_acc": self.best_acc, **self._meta()})
            ckpt.publish_best(self.out, path)
        d.barrier()
        self.last_ckpt = path or ckpt.latest(self.out)
        return self.last_ckpt  # type: ignore[return-value]

    def _meta(self) -> dict:
        """What `archdsl eval` reads from manifest.json (plain JSON): the network, its input,
        the label order and the evaluation preprocessing of this run."""
        net, data, r = self.network, self.data, self.recipe
        return {"network": net.name, "input": list(net.input), "classes": net.classes,
                "class_names": list(data.info.class_names),
                "normalize": {"mean": list(data.mean), "std": list(data.std)},
                "crop_pct": r.crop_pct, "interpolation": r.interpolation, "data": data.info.identity}

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, model: nn.Module, tally: bool = True) -> tuple[float, float]:
        """(loss, accuracy) on this process's share of val; `tally`: count and log bad images
        (once per epoch: the EMA's evaluation meets the same ones)."""
        was = model.training
        model.eval()
        loss, correct, n = 0.0, 0.0, 0.0
        seen: list[tuple[str, str]] = []  # this process's bad val images, logged once all have them
        for x, y, bad in self.val_loader:
            if tally:
                self._bad_images(bad, "val", log=False)
                seen += bad
            if len(y) == 0:
                continue
            x = self.normalize(x.to(self.dist.device, non_blocking=True))
            y = y.to(self.dist.device, non_blocking=True)
            if self.recipe.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with self.autocast:
                logits = model(x).float()
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            n += len(y)
        model.train(was)
        if tally and self.skip_bad:
            everyone = self.dist.gather(seen) if self.dist.active else [seen]
            self._log_bad([b for bad in everyone for b in bad], "val")
        loss, correct, n = self.dist.all_sum([loss, correct, n])
        return loss / max(n, 1), correct / max(n, 1)

    # ------------------------------------------------------------------ the loop
    def run(self) -> TrainResult:
        try:
            return self._run()
        finally:
            self.close_loaders()

    def close_loaders(self) -> None:
        """Shut the persistent DataLoader workers down now. They ignore SIGTERM (see
        `leave_signals_to_the_loop`), so the SIGTERM multiprocessing sends its children at
        interpreter exit cannot end them: left running, they hung the process that trained."""
        for loader in (getattr(self, "loader", None), getattr(self, "val_loader", None)):
            workers = getattr(loader, "_iterator", None)
            if workers is not None and hasattr(workers, "_shutdown_workers"):
                workers._shutdown_workers()
            if loader is not None:
                loader._iterator = None

    def _run(self) -> TrainResult:
        with stop_signals() as stop:
            self._stop = stop
            if getattr(self, "_resume_rng", None) is not None:
                try:
                    set_rng_state(self._resume_rng)
                except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
                    raise TrainError(f"{self.last_ckpt}: its random-number state cannot be restored "
                                     f"({type(e).__name__})", hint="the checkpoint was altered; resume "
                                     "from another or train afresh", code="E752") from None
            while self.epoch < self.recipe.epochs:
                self.train_epoch()
                self.end_epoch()
        return self.result()

    def _agree(self, usable: bool, bad: list[tuple[str, str]]) -> bool:
        """Under DDP with --skip-bad-images: every process's bad images reach the main process's
        log, and a batch is trained on only if every process has images left in its own. A
        process whose whole batch was bad has no backward pass to run, and the others' gradient
        all-reduce would wait for it forever; so all skip that batch."""
        everyone = self.dist.gather((usable, bad))
        self._log_bad([b for _, theirs in everyone for b in theirs], "train")
        if usable and not all(u for u, _ in everyone):
            self.report.warn("another process had no decodable image in its batch; every process "
                             "skips this batch (DDP runs the backward pass on all of them or none)")
        return all(u for u, _ in everyone)

    def _check(self, bad: bool) -> tuple[bool, bool]:
        """Whether any process saw a non-finite loss, and whether any was asked to stop."""
        bad, stopping = self.dist.any([bad, self._stop["signal"] is not None])
        return bad, stopping

    def data_position(self) -> int:
        """Global samples of this epoch's order consumed so far (all processes together)."""
        start_batch, base = self._segment
        return base + (self.batch - start_batch) * self.recipe.batch

    def _bad_images(self, bad: list[tuple[str, str]], split: str, log: bool = True) -> None:
        """This process's images that could not be decoded: counted (and, with `log`, written to
        OUT/bad_images.txt) with --skip-bad-images, else the run stops naming the file (after
        the caller saved a checkpoint)."""
        if not bad:
            return
        if not self.skip_bad:
            path, why = bad[0]
            raise BadImageStop(path, why, split)
        self.partial["bad"] += len(bad)
        for path, why in bad:
            self.report.warn(f"skipped bad {split} image {path}: {why}")
        if log:
            self._log_bad(bad, split)

    def _log_bad(self, bad: list[tuple[str, str]], split: str) -> None:
        """The main process writes the log, so under DDP it is given every process's list."""
        if bad and self.dist.main:
            with open(self.out / "bad_images.txt", "a", encoding="utf-8", errors="backslashreplace") as f:
                f.writelines(f"epoch {self.epoch + 1}\t{split}\t{path}\t{why}\n" for path, why in bad)

    def train_epoch(self) -> None:
        r, d = self.recipe, self.dist
        self.sampler.set_epoch(self.epoch)
        self.sampler.set_position(self.position)
        self._segment = (self.batch, self.position)
        self.net.train()
        self.report.start_epoch(self.epoch, r.epochs, self.batches, self.batch)
        started = time.perf_counter() - self.partial["seconds"]
        bad = False
        waited = 0.0  # this optimizer step's wait for the loader
        batches = iter(self.loader)
        try:
            for b in range(self.batch, self.batches):
                t0 = time.perf_counter()
                x, y, bad_files = next(batches)
                waited += time.perf_counter() - t0
                usable = len(y) > 1 or len(y) == 1 and self.augment.mix is None
                if d.active and self.skip_bad:
                    usable = self._agree(usable, bad_files)
                try:
                    self._bad_images(bad_files, "train", log=not d.active)
                except BadImageStop as e:
                    self.report.end_epoch()
                    e.checkpoint = self.save()
                    raise e.error() from None
                x, y = x.to(d.device, non_blocking=True), y.to(d.device, non_blocking=True)
                boundary = (b + 1) % r.accumulate == 0 or b + 1 == self.batches
                group = min(r.accumulate, self.batches - (b // r.accumulate) * r.accumulate)
                value = float("nan")
                if usable:
                    x, target = self.augment(x, y)
                    if r.channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
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
                lr = schedule_lr(self.optimizer)
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
                self.partial["wait_s"] += waited
                self.partial["lr"] = lr
                self.report.step(self.batch, self.partial["loss_sum"] / max(self.partial["batches"], 1), lr,
                                 self.partial["images"] * d.world / max(self.partial["seconds"], 1e-9),
                                 wait_s=waited, step=self.step)
                waited = 0.0
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
            f"(lr {schedule_lr(self.optimizer):.3g}); stopped, {kept}",
            hint="lower the learning rate (--set train.lr=...), clip gradients "
                 "(--set train.clip_grad=1.0) or lengthen warm-up, and train afresh", code="E757")

    def end_epoch(self) -> None:
        r, d = self.recipe, self.dist
        p = self.partial
        seconds = p["seconds"]
        try:
            val_loss, val_acc = self.evaluate(self.model)  # counts bad val images into the epoch's sums
        except BadImageStop as e:  # saved at the epoch's last step: a resume evaluates again
            e.checkpoint = self.save()
            raise e.error() from None
        sums = d.all_sum([p["loss_sum"], p["batches"], p["images"], p["bad"]])
        row = {"epoch": self.epoch + 1, "step": self.step,
               "train_loss": sums[0] / max(sums[1], 1), "val_loss": val_loss, "val_acc": val_acc,
               "lr": p.get("lr", schedule_lr(self.optimizer)),
               "images_per_s": sums[2] / max(seconds, 1e-9), "seconds": seconds,
               "data_wait_s": p["wait_s"]}
        if sums[3] or self.skip_bad:
            row["bad_images"] = int(sums[3])
        if self.ema is not None:
            row["val_loss_ema"], row["val_acc_ema"] = self.evaluate(self.ema.module, tally=False)
        self.history.append(row)
        improved = val_acc > self.best_acc
        if improved:
            self.best_acc, self.best_epoch = val_acc, self.epoch + 1
        self.epoch += 1
        self.batch = self.position = 0
        self._segment = (0, 0)
        self.partial = fresh_partial()
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
