"""One run per run directory: OUT/.lock holds the pid of the process training there.

The lock is an advisory `flock` on OUT/.lock, taken before anything else is written to OUT;
the file's text is the holder's pid and host, for the message a second run prints. The kernel
drops a flock when its process dies (even by SIGKILL), so a lock file left by a dead run is
simply taken over. Where `fcntl` is missing (Windows) the file is created exclusively and a
lock whose pid no longer runs is taken over.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

from ..lang.errors import TrainError
from .checkpoint import os_error

LOCK = ".lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "an unknown process"
    except OSError:
        return "an unknown process"


def _busy(out: Path, path: Path, holder: str) -> TrainError:
    pid = holder.split()[0] if holder else "?"
    return TrainError(f"{out} is in use by another run (pid {pid}; lock {path})",
                      hint="wait for it to finish or stop it; two runs in one --out would overwrite "
                           "each other's checkpoints. Train elsewhere with another --out",
                      code="E758")


class RunLock:
    """`with RunLock(out):` holds OUT/.lock for the block; raises TrainError (E758) naming the
    holder's pid and the lock's path while another live process holds it."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.path = self.out / LOCK
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            try:
                import fcntl
            except ImportError:  # pragma: no cover - not POSIX
                return self._acquire_exclusive()
            while True:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    raise _busy(self.out, self.path, _holder(self.path)) from None
                # The holder before us may have unlinked the file between our open and flock:
                # then we locked a file no one else will see. Start again.
                try:
                    same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    break
                os.close(fd)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
            os.fsync(fd)
            self.fd = fd
        except OSError as e:
            raise os_error(e, self.path, "take the run lock") from None
        return self

    def _acquire_exclusive(self) -> "RunLock":  # pragma: no cover - not POSIX
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = _holder(self.path)
                try:
                    pid = int(holder.split()[0])
                except (ValueError, IndexError):
                    pid = -1
                if pid > 0 and _alive(pid):
                    raise _busy(self.out, self.path, holder) from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
            self.fd = fd
            return self
        raise _busy(self.out, self.path, _holder(self.path))

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # unlink while still holding it (see acquire)
        except OSError:
            pass
        os.close(self.fd)  # closing drops the flock
        self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
