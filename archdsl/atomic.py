"""Files written whole or not at all: a temporary beside the target, flushed and fsynced, then
renamed over it (a rename is atomic on POSIX), then the directory fsynced. A full disk or a
kill mid-write leaves the previous file as it was and no temporary behind.

Imports nothing of archdsl: every room may use it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any, Callable


def temp_beside(path: Path, suffix: str = "") -> Path:
    """A hidden name in the target's directory (same filesystem, so the rename is atomic)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}{suffix}")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path | str, write: Callable[[IO[bytes]], Any], make_parents: bool = False) -> Path:
    """Call `write(f)` on a temporary beside `path`, then put it in place. An OSError propagates
    (the caller words it) and leaves the old file and no temporary. A missing directory is an
    error (ENOENT) unless `make_parents`."""
    path = Path(path)
    tmp = temp_beside(path)
    try:
        if make_parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    return path


def write_text(path: Path | str, text: str) -> Path:
    """`Path.write_text`, atomically (UTF-8)."""
    data = text.encode("utf-8", "surrogateescape")
    return atomic_write(path, lambda f: f.write(data))
