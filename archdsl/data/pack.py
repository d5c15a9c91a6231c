"""Write an ImageFolder as WebDataset tar shards: `pack(root, to, shard_size=...)`.

OUTDIR gets train-000000.tar, train-000001.tar, ..., val-000000.tar, ..., index.json:
    {"format": "archdsl-shards/1", "classes": [...], "seed": 0, "shard_size": 1000,
     "splits": {"train": {"count": N, "shards": [{"name", "count", "bytes", "sha256"}, ...]},
                "val": {...}}, "skipped": [[path, why], ...]}
Each sample is two members, `<key>.<ext>` (the image file's bytes as they are, never
re-encoded; ext its lower-cased suffix) and `<key>.cls` (the class index as decimal text),
key = the sample's 9-digit number in its split. Beside them, index-train.npz and
index-val.npz hold each sample's shard, byte offset, size and label, so archdsl opens a split
of any size without walking the tar headers (used only while every shard keeps the size and
count index.json records; other readers ignore these files). Samples are shuffled once (seeded) before they
are cut into shards, so a shard holds a mix of classes (what shard-streaming readers such as
webdataset need; archdsl's reader does not care). Members carry no time, owner or
permissions, so packing the same folder twice gives byte-identical shards (same sha256).

Every file's header is opened first (decode.open_image): a 0-byte file, a non-image or a
decompression bomb is E702, or with `skip_bad` left out and listed under "skipped".
Truncated pixel data is not found here (that needs a full decode); training reports it.

Atomic: everything is written in a hidden sibling folder (each file fsync'ed), which is
renamed to OUTDIR at the end; a crash leaves OUTDIR untouched. OUTDIR must not exist or be
empty.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import tarfile
from dataclasses import dataclass
from typing import Callable

from ..atomic import fsync_dir
from ..lang.errors import DataError
from . import decode
from .listing import SKIP_HINT, list_folder
from .shards import INDEX_FORMAT, INDEX_NAME, index_shards, save_index, saved_index_name

DEFAULT_SHARD_SIZE = 1000


@dataclass
class Packed:
    to: str
    classes: list[str]
    counts: dict[str, int]  # samples per split
    shards: dict[str, int]  # shards per split
    skipped: list[tuple[str, str]]
    bytes: int


def pack(root: str | os.PathLike, to: str | os.PathLike, *, shard_size: int = DEFAULT_SHARD_SIZE,
         seed: int = 0, skip_bad: bool = False,
         progress: Callable[[str, int, int], None] | None = None) -> Packed:
    """Pack the ImageFolder at `root` into shards in `to` (module docstring)."""
    for what, value in (("root", root), ("to", to)):
        if not isinstance(value, (str, os.PathLike)):
            raise DataError(f"pack's `{what}` takes a folder path (a str or Path), not {type(value).__name__}",
                            hint='for example pack("images", "shards")', code="E010")
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise DataError(f"pack's `shard_size` takes a whole number of images >= 1, not {shard_size!r}",
                        hint="for example shard_size=1000", code="E010")
    to = os.path.abspath(os.fspath(to))
    src = os.path.abspath(os.fspath(root))
    if to == src or to.startswith(src.rstrip(os.sep) + os.sep):
        raise DataError(f"{to} is inside the folder being packed ({src})",
                        hint="write the shards outside it: the next listing would take them for a class",
                        code="E701")
    if os.path.exists(to) and (not os.path.isdir(to) or os.listdir(to)):
        raise DataError(f"{to} exists and is not an empty folder",
                        hint="name a new folder; shards are never written over others", code="E701")
    parent = os.path.dirname(to)
    if not os.path.isdir(parent):
        raise DataError(f"cannot write {to}: the folder {parent} does not exist", code="E701")
    folder = list_folder(root, skip_bad=skip_bad)
    skipped = list(folder.train.skipped) + list(folder.val.skipped)
    work = os.path.join(parent, f".{os.path.basename(to)}.partial-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    os.mkdir(work)
    try:
        splits = {}
        for name, split in (("train", folder.train), ("val", folder.val)):
            order = list(range(len(split)))
            random.Random(seed).shuffle(order)
            good = []
            for i in order:
                why = _check(split.files[i])
                if why is None:
                    good.append(i)
                elif skip_bad:
                    skipped.append((split.files[i], why))
                else:
                    raise DataError(f"cannot decode image {split.files[i]}: {why}", hint=SKIP_HINT,
                                    code="E702")
            if not good:
                raise DataError(f"{split.root}: no usable images left after skipping unreadable "
                                "ones", code="E703")
            entries = []
            for start in range(0, len(good), shard_size):
                chunk = good[start:start + shard_size]
                entries.append(_write_shard(work, f"{name}-{len(entries):06d}.tar", split, chunk,
                                            start))
                if progress:
                    progress(name, min(start + shard_size, len(good)), len(good))
            splits[name] = {"count": len(good), "shards": entries}
            shard_paths = [os.path.join(work, e["name"]) for e in entries]
            save_index(index_shards(shard_paths), os.path.join(work, saved_index_name(name)))
        index = {"format": INDEX_FORMAT, "classes": folder.classes, "seed": seed,
                 "shard_size": shard_size, "splits": splits,
                 "skipped": [[p, why] for p, why in skipped]}
        _write_synced(os.path.join(work, INDEX_NAME),
                      (json.dumps(index, indent=1) + "\n").encode("ascii"))
        fsync_dir(work)
        os.replace(work, to)  # onto a missing or empty folder: atomic
        fsync_dir(parent)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Packed(to, folder.classes, {k: v["count"] for k, v in splits.items()},
                  {k: len(v["shards"]) for k, v in splits.items()}, skipped,
                  sum(e["bytes"] for v in splits.values() for e in v["shards"]))


def _check(path: str) -> str | None:
    try:
        with decode.open_image(path):
            return None
    except decode.BadImage as e:
        return e.reason


def _write_shard(work: str, name: str, split, chunk: list[int], first: int) -> dict:
    path = os.path.join(work, name)
    with open(path, "wb") as f:
        with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for j, i in enumerate(chunk):
                key = f"{first + j:09d}"
                src = split.files[i]
                ext = os.path.splitext(src)[1].lower().lstrip(".")
                with open(src, "rb") as img:
                    data = img.read()
                _add(tf, f"{key}.{ext}", data)
                _add(tf, f"{key}.cls", str(int(split.labels[i])).encode("ascii"))
        f.flush()
        os.fsync(f.fileno())
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"name": name, "count": len(chunk), "bytes": os.path.getsize(path),
            "sha256": h.hexdigest()}


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o444, 0
    tf.addfile(info, io.BytesIO(data))


def _write_synced(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())

