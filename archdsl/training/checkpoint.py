"""Checkpoints that a crash cannot half-write.

Layout of a run directory:

    OUT/checkpoints/step-00000440/model.safetensors   weights (safetensors)
                                  ema.safetensors     EMA weights, when the recipe keeps an EMA
                                  state.pt            optimizer, scheduler, epoch/step, data order,
                                                      every RNG state, history (plain tensors and
                                                      containers: loads with weights_only=True)
    OUT/best.safetensors                              weights of the best validation accuracy

A checkpoint directory is written under a temporary name, every file fsynced, then renamed
into place (a rename is atomic), and the parent directory fsynced. So a `step-*` directory
either is complete or does not exist, and `latest()` is simply the highest complete step.
The last `KEEP` checkpoints are kept, so a crash while replacing one still leaves another.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, IO

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ..lang.errors import TrainError

KEEP = 2
STEP_DIR = re.compile(r"^step-(\d{8,})$")
MODEL, EMA, STATE = "model.safetensors", "ema.safetensors", "state.pt"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write a file via a temporary beside it: write, flush, fsync, rename, fsync the dir."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return path


def tensors_for_file(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies (safetensors wants unshared, contiguous tensors)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state_dict.items()}


def write_weights(path: Path, state_dict: dict[str, torch.Tensor], meta: dict[str, str] | None = None) -> Path:
    data = st_save(tensors_for_file(state_dict), metadata=meta)
    return atomic_write(path, lambda f: f.write(data))


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    return st_load(Path(path).read_bytes())


def save(out: Path, step: int, model_sd: dict, state: dict, ema_sd: dict | None = None) -> Path:
    """Write checkpoint `step` under out/checkpoints atomically; drop all but the last KEEP."""
    root = Path(out) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    meta = {"step": str(step), "epoch": str(state.get("epoch", ""))}
    write_weights(tmp / MODEL, model_sd, meta)
    if ema_sd is not None:
        write_weights(tmp / EMA, ema_sd, meta)
    atomic_write(tmp / STATE, lambda f: torch.save(state, f))
    fsync_dir(tmp)
    if final.exists():  # the same step saved again (e.g. the epoch end after a step save)
        old = root / f".old-{final.name}-{os.getpid()}"
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old)
    else:
        os.rename(tmp, final)
    fsync_dir(root)
    for stale in all_steps(out)[:-KEEP]:
        shutil.rmtree(stale, ignore_errors=True)
    for junk in root.glob(".tmp-*"):  # left by a run killed mid-save
        if not junk.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(junk, ignore_errors=True)
    return final


def all_steps(out: Path) -> list[Path]:
    """Complete checkpoint directories, oldest first."""
    root = Path(out) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found) if (p / MODEL).is_file() and (p / STATE).is_file()]


def latest(out: Path) -> Path | None:
    steps = all_steps(out)
    return steps[-1] if steps else None


def load(ckpt: Path) -> tuple[dict, dict, dict | None]:
    """(model weights, training state, EMA weights or None) of one checkpoint directory."""
    ckpt = Path(ckpt)
    try:
        model_sd = read_weights(ckpt / MODEL)
        ema_sd = read_weights(ckpt / EMA) if (ckpt / EMA).is_file() else None
        state = torch.load(ckpt / STATE, map_location="cpu", weights_only=True)
    except Exception as e:  # a file changed under us or written by something else
        raise TrainError(f"cannot read checkpoint {ckpt}: {type(e).__name__}: {e}",
                         code="E752") from None
    return model_sd, state, ema_sd


def load_checkpoint(out_dir: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The latest weights of a run directory as a state dict (safetensors; nothing unpickled)."""
    ckpt = latest(Path(out_dir))
    if ckpt is None:
        raise TrainError(f"no checkpoint in {out_dir}",
                         hint="checkpoints live in OUT/checkpoints/step-*/; train with --out OUT",
                         code="E751")
    return read_weights(ckpt / MODEL)
