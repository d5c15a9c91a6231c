"""Checkpoints that a crash cannot half-write and that are verified before they are trusted.

Layout of a run directory:

    OUT/checkpoints/step-00000440/model.safetensors   weights (safetensors)
                                  ema.safetensors     EMA weights, when the recipe keeps an EMA
                                  best.safetensors    weights of the best validation accuracy so
                                                      far (a hard link where unchanged)
                                  state.pt            optimizer, scheduler, epoch/step, data order,
                                                      every RNG state, history (plain tensors and
                                                      containers: loads with weights_only=True)
                                  manifest.json       written last: each file's size and sha256
    OUT/best.safetensors, OUT/metrics.jsonl           published from the newest checkpoint
    OUT/.lock                                         the pid of the run using OUT (see `lock`)

A checkpoint directory is written under a temporary name, every file fsynced, the manifest
last, then renamed into place (a rename is atomic), and the parent directory fsynced. So a
`step-*` directory either is complete or does not exist. `verify` re-hashes every file
against the manifest: a flipped byte, a truncated or deleted file, or a file swapped in from
another checkpoint is found, and `newest_verified` falls back to the newest checkpoint that
verifies. OUT/best.safetensors and OUT/metrics.jsonl are derived from a checkpoint after it is
committed, and re-derived on resume, so a kill between the two cannot leave them out of step.
Old checkpoints are pruned by renaming them aside first, then deleting; whatever a killed
save or prune leaves (`.tmp-*`, `.old-*`) is removed by `clean` at the next start.
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable, IO

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ..lang.errors import TrainError
from ..atomic import atomic_write as _atomic_write
from ..atomic import fsync_dir

KEEP = 2
MANIFEST_FORMAT = 1
STEP_DIR = re.compile(r"^step-(\d{8,})$")
MODEL, EMA, BEST, STATE, MANIFEST = ("model.safetensors", "ema.safetensors", "best.safetensors",
                                     "state.pt", "manifest.json")


def os_error(e: OSError, path: Path | str, doing: str) -> TrainError:
    """An OSError as a user error naming the path and the cause (disk full, read-only, ...)."""
    cause = e.strerror or str(e)
    name = errno.errorcode.get(e.errno or 0, "")
    hints = {errno.ENOSPC: "free some space or choose another --out",
             errno.EROFS: "the filesystem is read-only: choose another --out",
             errno.EACCES: "you may not write there: choose another --out",
             errno.EPERM: "you may not write there: choose another --out",
             errno.ENAMETOOLONG: "use a shorter path",
             errno.EDQUOT: "your disk quota is used up: free some space or choose another --out"}
    return TrainError(f"cannot {doing} `{path}`: {cause}" + (f" ({name})" if name else ""),
                      hint=hints.get(e.errno or 0, "check the path and the filesystem it is on"),
                      code="E759")


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """archdsl.atomic.atomic_write, with an OSError (full disk, read-only filesystem, ...) raised
    as a TrainError naming the path."""
    try:
        return _atomic_write(path, write, make_parents=True)
    except OSError as e:
        raise os_error(e, path, "write") from None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tensors_for_file(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies (safetensors wants unshared, contiguous tensors)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state_dict.items()}


def write_weights(path: Path, state_dict: dict[str, torch.Tensor], meta: dict[str, str] | None = None) -> Path:
    data = st_save(tensors_for_file(state_dict), metadata=meta)
    return atomic_write(path, lambda f: f.write(data))


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    return st_load(Path(path).read_bytes())


def _write_bytes(path: Path, data: bytes) -> dict:
    atomic_write(path, lambda f: f.write(data))
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _best_of(ckpt: Path) -> tuple[Path, dict] | None:
    """The best-weights file of a verified checkpoint and its manifest entry, if it has one."""
    try:
        entry = json.loads((ckpt / MANIFEST).read_text())["files"].get(BEST)
    except (OSError, ValueError, KeyError, AttributeError, TypeError, RecursionError):
        return None
    return (ckpt / BEST, entry) if entry else None


def save(out: Path, step: int, model_sd: dict, state: dict, ema_sd: dict | None = None,
         best_sd: dict | None = None, meta: dict | None = None, best_from: Path | None = None) -> Path:
    """Write checkpoint `step` under out/checkpoints atomically; drop all but the last KEEP.

    `best_sd`: the best weights, when they changed since the last checkpoint; otherwise the
    previous checkpoint's (`best_from`, default the latest) best file is carried over
    (hard-linked). `meta` goes into the
    manifest. An OSError leaves every earlier checkpoint as it was."""
    root = Path(out) / "checkpoints"
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        tags = {"step": str(step), "epoch": str(state.get("epoch", ""))}
        files = {MODEL: _write_bytes(tmp / MODEL, st_save(tensors_for_file(model_sd), metadata=tags))}
        if ema_sd is not None:
            files[EMA] = _write_bytes(tmp / EMA, st_save(tensors_for_file(ema_sd), metadata=tags))
        if best_sd is model_sd:  # the weights just written are the best: the same file again
            _link_or_copy(tmp / MODEL, tmp / BEST)
            files[BEST] = files[MODEL]
        elif best_sd is not None:
            files[BEST] = _write_bytes(tmp / BEST, st_save(tensors_for_file(best_sd), metadata=tags))
        else:
            prev = best_from or latest(out)
            carried = _best_of(prev) if prev is not None else None
            if carried is not None and carried[0].is_file():
                _link_or_copy(carried[0], tmp / BEST)
                files[BEST] = carried[1]
        buf = io.BytesIO()
        torch.save(state, buf)
        files[STATE] = _write_bytes(tmp / STATE, buf.getvalue())
        manifest = {"format": MANIFEST_FORMAT, "step": step, "files": files, **(meta or {})}
        _write_bytes(tmp / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
        fsync_dir(tmp)
        if final.exists():  # the same step saved again (e.g. the epoch end after a step save)
            old = root / f".old-{final.name}-{os.getpid()}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
        fsync_dir(root)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise os_error(e, getattr(e, "filename", None) or final, "write the checkpoint") from None
    except TrainError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prune(out)
    return final


def prune(out: Path) -> None:
    """Drop all but the last KEEP checkpoints: renamed aside first (so a kill mid-delete leaves
    a `.old-*` that `clean` removes, never a partial `step-*`), then deleted."""
    root = Path(out) / "checkpoints"
    for stale in all_steps(out)[:-KEEP]:
        aside = root / f".old-{stale.name}-{os.getpid()}"
        try:
            os.rename(stale, aside)
        except OSError:
            continue
        shutil.rmtree(aside, ignore_errors=True)


def clean(out: Path) -> list[Path]:
    """Remove what killed writes and prunes leave behind: checkpoints/.tmp-* and .old-*,
    half-written step directories without a manifest, and OUT/.NAME.tmp-PID files. Call it only
    while holding the run's lock (no one else is writing)."""
    out = Path(out)
    root = out / "checkpoints"
    removed = []
    mine = f"-{os.getpid()}"
    junk = [p for p in root.iterdir() if p.name.startswith((".tmp-", ".old-"))] if root.is_dir() else []
    junk += [p for p in out.iterdir() if p.name.startswith(".") and ".tmp-" in p.name] if out.is_dir() else []
    for p in junk:
        if p.name.endswith(mine):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def step_dirs(out: Path) -> list[Path]:
    """Every `step-*` directory, verified or not, oldest first."""
    root = Path(out) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def all_steps(out: Path) -> list[Path]:
    """Complete checkpoint directories (with a manifest), oldest first. Not verified: see
    `verify` and `newest_verified`."""
    return [p for p in step_dirs(out) if (p / MANIFEST).is_file()]


def latest(out: Path) -> Path | None:
    steps = all_steps(out)
    return steps[-1] if steps else None


def verify(ckpt: Path) -> str | None:
    """None when every file of the checkpoint matches its manifest; else what is wrong."""
    ckpt = Path(ckpt)
    try:
        manifest = json.loads((ckpt / MANIFEST).read_text())
        files = manifest["files"]
        assert isinstance(files, dict) and manifest.get("format") == MANIFEST_FORMAT
    except FileNotFoundError:
        return "no manifest.json (the save did not finish, or an older archdsl wrote it)"
    except (OSError, ValueError, KeyError, TypeError, AssertionError, RecursionError):
        return "manifest.json is unreadable"
    m = STEP_DIR.match(ckpt.name)
    if m and manifest.get("step") != int(m.group(1)):  # a renamed directory would stay "newest"
        return f"its manifest is for step {manifest.get('step')!r}, not the {int(m.group(1))} of its name"
    for required in (MODEL, STATE):
        if required not in files:
            return f"the manifest lists no {required}"
    for name, entry in files.items():
        path = ckpt / name
        if not path.is_file():
            return f"{name} is missing"
        try:
            if path.stat().st_size != entry["bytes"]:
                return f"{name} has {path.stat().st_size} bytes, the manifest says {entry['bytes']}"
            if sha256_file(path) != entry["sha256"]:
                return f"{name} does not match its sha256 in the manifest (changed or corrupted)"
        except (OSError, KeyError, TypeError) as e:
            return f"{name} cannot be checked: {e}"
    stray = {p.name for p in ckpt.iterdir() if p.name != MANIFEST} - set(files)
    if stray & {MODEL, EMA, BEST, STATE}:
        return f"{sorted(stray)[0]} is not in the manifest"
    return None


def newest_verified(out: Path, quiet: bool = False, problems: list[str] | None = None) -> Path | None:
    """The newest checkpoint that verifies. Each newer one that does not is described in
    `problems` (and, unless quiet, warned about)."""
    for ckpt in reversed(step_dirs(out)):
        why = verify(ckpt)
        if why is None:
            return ckpt
        if problems is not None:
            problems.append(f"{ckpt}: {why}")
        if not quiet:
            warnings.warn(f"checkpoint {ckpt} is not usable ({why}); trying an older one", stacklevel=2)
    return None


def set_aside(ckpt: Path) -> Path:
    """Rename a checkpoint that failed verification to `.corrupt-step-*` (kept for inspection,
    no longer a candidate)."""
    target = ckpt.with_name(f".corrupt-{ckpt.name}")
    n = 1
    while target.exists():
        n += 1
        target = ckpt.with_name(f".corrupt-{ckpt.name}.{n}")
    os.rename(ckpt, target)
    return target


def load(ckpt: Path, verified: bool = False) -> tuple[dict, dict, dict | None]:
    """(model weights, training state, EMA weights or None) of one checkpoint directory,
    verified against its manifest first unless the caller just did."""
    ckpt = Path(ckpt)
    why = None if verified else verify(ckpt)
    if why is not None:
        raise TrainError(f"checkpoint {ckpt} is not usable: {why}", code="E752")
    try:
        model_sd = read_weights(ckpt / MODEL)
        ema_sd = read_weights(ckpt / EMA) if (ckpt / EMA).is_file() else None
        state = torch.load(ckpt / STATE, map_location="cpu", weights_only=True)
    except Exception as e:  # a file changed under us or written by something else
        raise TrainError(f"cannot read checkpoint {ckpt}: {type(e).__name__}: {e}",
                         code="E752") from None
    if not isinstance(state, dict):
        raise TrainError(f"cannot read checkpoint {ckpt}: {STATE} holds a {type(state).__name__}, "
                         "not a training state", code="E752")
    return model_sd, state, ema_sd


def publish_best(out: Path, ckpt: Path) -> Path | None:
    """Make OUT/best.safetensors the best weights recorded in `ckpt` (or remove it when the
    checkpoint has none): linked or copied into a temporary, then renamed over."""
    out = Path(out)
    target = out / BEST
    found = _best_of(ckpt)
    try:
        if found is None:
            target.unlink(missing_ok=True)
            return None
        src, entry = found
        if target.is_file() and (os.path.samefile(target, src) or  # already that file (hard-linked)
                                 target.stat().st_size == entry["bytes"] and sha256_file(target) == entry["sha256"]):
            return target
        tmp = out / f".{BEST}.tmp-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        _link_or_copy(src, tmp)
        os.replace(tmp, target)
        fsync_dir(out)
    except OSError as e:
        raise os_error(e, target, "write") from None
    return target


def load_checkpoint(out_dir: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The weights of the newest checkpoint of a run directory that verifies, as a state dict
    (safetensors; nothing unpickled). A newer one that does not verify is warned about."""
    from ..lang.errors import ArchError

    if not isinstance(out_dir, (str, os.PathLike)):
        raise ArchError(f"load_checkpoint takes a run directory (a str or Path), not {type(out_dir).__name__}",
                        hint='for example archdsl.load_checkpoint("runs/atto")', code="E751")
    return read_weights(newest_checkpoint(out_dir) / MODEL)


WHICH = {"last": MODEL, "best": BEST, "ema": EMA}  # the weights a checkpoint can give, by name


def weights_in(ckpt: Path, which: str) -> tuple[str | None, dict]:
    """The file of a verified checkpoint that holds its `which` weights (`last`, `best` or
    `ema`), None where it has none, and its manifest."""
    manifest = json.loads((Path(ckpt) / MANIFEST).read_text())
    name = WHICH[which]
    return (name if name in manifest.get("files", {}) else None), manifest


def newest_checkpoint(out_dir: str | os.PathLike) -> Path:
    """The newest checkpoint of a run directory that verifies (a newer one that does not is
    warned about); a TrainError (E751) where there is none."""
    problems: list[str] = []
    try:
        ckpt = newest_verified(Path(out_dir), problems=problems)
    except OSError as e:  # a name too long, a folder we may not read
        raise TrainError(f"cannot read the run directory {str(out_dir)[:200]}: {e.strerror or e}",
                         hint="pass the OUT of an earlier `archdsl train`", code="E751") from None
    if ckpt is None:
        raise TrainError(f"no checkpoint in {out_dir}" + (" verifies: " + "; ".join(problems) if problems else ""),
                         hint="checkpoints live in OUT/checkpoints/step-*/; train with --out OUT",
                         code="E751")
    return ckpt
