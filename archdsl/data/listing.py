"""List an ImageFolder by names, never by pixels: `list_folder(root) -> Folder`.

Layout: root/train/<class>/**/<image> and root/val/<class>/**/<image> (files may sit in
sub-folders of a class folder). Class indices are the sorted train class names; val may use a
subset of them. Names starting with "." are skipped (files and folders); only files ending in
IMAGE_EXTENSIONS (any case) count. Everything is sorted by name, so a listing is reproducible.

Nothing is opened: `os.scandir` gives names and file types, and only symbolic links are
stat-ed (to follow them). Memory is a few dozen bytes per file name, held in `Paths`, a packed
byte buffer rather than a list of str, so DataLoader workers forked from the process touch no
per-file Python object (no copy-on-read growth of the listing in every worker).

Refused with a DataError (codes as training/data.py has them):
- E701: no root, no train/ or val/, files outside class folders, val classes unknown to train,
  a folder reached twice (a symbolic-link loop, or two links to one folder), train and val
  sharing files (the same inode, e.g. a train class folder that links into val/).
- E703: no class folders, a class folder without images.
- E702: a name that looks like an image but is no regular file (a FIFO, a device, a socket, a
  dangling link): it would block or fail in a DataLoader worker. With `skip_bad` it is left out
  and reported in `Split.skipped` instead.
File names that are not UTF-8 are kept byte-exact (Python's surrogateescape); messages show
them escaped (lang.errors.visible), never raw.
"""
from __future__ import annotations

import hashlib
import os
from array import array
import stat
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..lang.errors import DataError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm", ".pbm", ".avif"}
LAYOUT_HINT = "expected DIR/train/<class>/<image> and DIR/val/<class>/<image>"
SKIP_HINT = ("pass --skip-bad-images (API: skip_bad_images=True) to leave unreadable images out "
             "and count them")


class Paths:
    """A read-only sequence of file paths: one common prefix (the split's folder) and the rest
    of every path packed in one byte buffer (os.fsencode'd), with their offsets."""

    def __init__(self, paths: Sequence[str] = (), *, prefix: str = "", _blob: bytes | None = None,
                 _lengths: array | np.ndarray | None = None):
        if _blob is None:
            encoded = [os.fsencode(p) for p in paths]
            _blob, _lengths = b"".join(encoded), array("q", map(len, encoded))
        self._prefix = os.fsencode(prefix)
        self._offsets = np.zeros(len(_lengths) + 1, dtype=np.int64)
        if len(_lengths):
            np.cumsum(np.asarray(_lengths, dtype=np.int64), out=self._offsets[1:])
        self._blob = np.frombuffer(_blob, dtype=np.uint8)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> str:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        return os.fsdecode(self._prefix + self._blob[self._offsets[i]:self._offsets[i + 1]].tobytes())

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def parts(self) -> tuple[bytes, np.ndarray]:
        """(the packed names without the prefix, their lengths): what `Paths(_blob=, _lengths=)`
        takes back."""
        return self._blob.tobytes(), np.diff(self._offsets)

    def digest_into(self, h) -> None:
        """Feed the names without the prefix (so a moved folder hashes the same) to hash `h`."""
        h.update(self._blob.tobytes())
        h.update(self._offsets.tobytes())

    @property
    def nbytes(self) -> int:
        return self._blob.nbytes + self._offsets.nbytes


@dataclass
class Split:
    """One split: its files (sorted), their labels (indices into the class list)."""

    root: str
    files: Paths
    labels: np.ndarray  # int64, one per file
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why) with skip_bad
    ident: np.ndarray | None = field(default=None, repr=False)  # (N, 2) device, inode

    def __len__(self) -> int:
        return len(self.files)


@dataclass
class Folder:
    root: str
    classes: list[str]
    train: Split
    val: Split

    def identity(self, sizes: bool = True) -> dict:
        """What a checkpoint records to know the data again: the root, the file count and a
        BLAKE2b fingerprint of every file's path relative to the root, label and (`sizes`)
        size: one stat per file, no pixel read (measured: 1M files in about 20 s with sizes,
        a few seconds without)."""
        h = hashlib.blake2b(digest_size=16)
        for name, split in (("train", self.train), ("val", self.val)):
            h.update(f"{name}\0{len(split)}\0".encode())
            split.files.digest_into(h)
            h.update(split.labels.astype("<i8").tobytes())
            if sizes:
                h.update(np.array([os.stat(p).st_size for p in split.files], "<i8").tobytes())
        return {"path": os.path.abspath(self.root), "files": len(self.train) + len(self.val),
                "fingerprint": h.hexdigest()}


def list_folder(root: str | os.PathLike, skip_bad: bool = False) -> Folder:
    """The ImageFolder at `root`: class names and the two splits, names only (see module doc)."""
    root = os.fspath(root)
    classes, train = list_split(root, "train", skip_bad)
    _, val = list_split(root, "val", skip_bad, classes=classes)
    _no_shared_files(root, train, val)
    return Folder(root, classes, train, val)


def list_split(root: str | os.PathLike, split: str, skip_bad: bool = False,
               classes: list[str] | None = None) -> tuple[list[str], Split]:
    """One split, root/split/<class>/**: (the class list, the Split). `classes`: the label order
    to use (the train classes, a checkpoint's class names); a class folder not in it is E701.
    None: the split's own sorted folder names."""
    root = os.fspath(root)
    if not os.path.exists(root):
        raise DataError(f"data directory {root} does not exist",
                        hint="use --data digits for the bundled digits, or " + LAYOUT_HINT,
                        code="E701")
    if not os.path.isdir(root):
        raise DataError(f"{root} is not a directory", hint=LAYOUT_HINT, code="E701")
    found, listed = _split(root, split, skip_bad)
    if classes is None:
        classes = found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        where = "train/" if split == "val" else "the class list"
        raise DataError(f"{os.path.join(root, split)}: classes not in {where}: {', '.join(unknown)}",
                        hint=f"{split}/ must use the class folders of {where}", code="E701")
    index = {c: i for i, c in enumerate(classes)}
    d = os.path.join(root, split)
    labels = np.array([index[c] for c in found], dtype=np.int64)[np.frombuffer(listed.cls, np.int64)] \
        if len(listed) else np.zeros(0, np.int64)
    return list(classes), Split(d, Paths(prefix=d + os.sep, _blob=b"".join(listed.chunks),
                                         _lengths=listed.lengths),
                                labels, listed.skipped,
                                np.frombuffer(listed.ident, np.int64).reshape(-1, 2).copy())


class _Listed:
    """What a walk collects, without a Python object per file: encoded paths joined per
    folder, their lengths, the class position and the (device, inode) of each file."""

    def __init__(self):
        self.chunks: list[bytes] = []
        self.lengths, self.cls, self.ident = array("q"), array("q"), array("q")
        self.skipped: list[tuple[str, str]] = []
        self.cut = 0  # bytes of the split folder's path, left out of every stored path

    def __len__(self) -> int:
        return len(self.cls)

    def add(self, chunk: list[bytes]) -> None:
        """Move a folder's encoded paths in (in listing order) and empty `chunk`."""
        if chunk:
            self.chunks.append(b"".join(chunk))
            self.lengths.extend(map(len, chunk))
            chunk.clear()


def _split(root: str, split: str, skip_bad: bool) -> tuple[list[str], _Listed]:
    d = os.path.join(root, split)
    if not os.path.isdir(d):
        found = sorted(os.listdir(root))
        raise DataError(f"{root}: no `{split}/` folder (found: {', '.join(found) or 'nothing'})",
                        hint=LAYOUT_HINT, code="E701")
    with os.scandir(d) as it:
        entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    stray = [e.name for e in entries if not _is_dir(e)]
    if stray:
        raise DataError(f"{d}: files outside class folders: {', '.join(stray[:3])}"
                        + (f" and {len(stray) - 3} more" if len(stray) > 3 else ""),
                        hint=LAYOUT_HINT, code="E701")
    classes = [e.name for e in entries]
    if not classes:
        raise DataError(f"{d}: no class folders", hint=LAYOUT_HINT, code="E703")
    listed = _Listed()
    seen: dict[tuple[int, int], str] = {}
    listed.cut = len(os.fsencode(d + os.sep))
    for k, c in enumerate(classes):
        before = len(listed)
        _walk(os.path.join(d, c), k, listed, seen, skip_bad)
        if len(listed) == before:
            raise DataError(f"{os.path.join(d, c)}: class folder has no images",
                            hint="image files end in " + ", ".join(sorted(IMAGE_EXTENSIONS)),
                            code="E703")
    return classes, listed


def _is_dir(e: os.DirEntry) -> bool:
    try:
        return e.is_dir()  # follows symbolic links
    except OSError:
        return False


def _walk(d: str, c: int, out: _Listed, seen: dict[tuple[int, int], str], skip_bad: bool) -> None:
    """Depth-first, sorted; every folder entered once (by device and inode)."""
    st = os.stat(d)
    key = (st.st_dev, st.st_ino)
    if key in seen:
        raise DataError(f"{d} is the folder {seen[key]} again (a symbolic-link loop, or two links "
                        "to one folder)",
                        hint="each image must be reachable once; remove the extra link", code="E701")
    seen[key] = d
    with os.scandir(d) as it:
        entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    chunk: list[bytes] = []
    for e in entries:
        if _is_dir(e):
            out.add(chunk)
            _walk(e.path, c, out, seen, skip_bad)
            continue
        name = e.name
        if name[name.rfind("."):].lower() not in IMAGE_EXTENSIONS:  # no dot: the last letter
            continue
        why = None
        try:
            if e.is_symlink():  # follow it: the target decides (ELOOP and ENOENT land below)
                target = os.stat(e.path)
                mode, ident = target.st_mode, (target.st_dev, target.st_ino)
            else:  # d_type says what it is; a plain entry lives on its folder's device
                mode = (stat.S_IFREG if e.is_file(follow_symlinks=False)
                        else e.stat(follow_symlinks=False).st_mode)
                ident = (key[0], e.inode())
            if not stat.S_ISREG(mode):
                why = f"not a regular file ({_kind(mode)})"
        except FileNotFoundError:
            why = "a symbolic link to nothing"
        except OSError as err:
            why = f"cannot stat: {err.strerror or err}"
        if why is None:
            chunk.append(os.fsencode(e.path)[out.cut:])
            out.cls.append(c)
            out.ident.extend(ident)
        elif skip_bad:
            out.skipped.append((e.path, why))
        else:
            raise DataError(f"{e.path}: {why}", hint=SKIP_HINT, code="E702")
    out.add(chunk)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a file"


def _no_shared_files(root: str, train: Split, val: Split) -> None:
    """Refuse a file (device, inode) present in both splits; sorted arrays, no per-file objects."""
    ident = np.concatenate([train.ident, val.ident])
    side = np.repeat([0, 1], [len(train), len(val)])
    order = np.lexsort((side, ident[:, 1], ident[:, 0]))
    ident, side = ident[order], side[order]
    clash = np.flatnonzero((ident[1:] == ident[:-1]).all(axis=1) & (side[1:] != side[:-1]))
    if len(clash):
        i, j = order[clash[0]], order[clash[0] + 1] - len(train)
        raise DataError(f"{root}: train and val share files: {train.files[i]} is {val.files[j]}",
                        hint="train and val must hold different images (a class folder in "
                             "train/ may not link into val/, nor the other way)", code="E701")
