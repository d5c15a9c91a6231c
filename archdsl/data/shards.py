"""WebDataset tar shards, read map-style: `find_shards`, `index_shards`, `ShardDataset`.

Format (what `webdataset.TarWriter` and `archdsl data pack` write): plain, uncompressed POSIX
tar files; consecutive members sharing a key form one sample, the key being the member name
up to the first "." of its base name (`n01440764_10026.jpg` + `n01440764_10026.cls`). A sample
has one image member (jpg, jpeg, png, webp, ...) and a `cls` member holding the class index
as decimal text.

Where shards come from (`find_shards(spec)`):
- a directory holding train-*.tar and val-*.tar (and the `index.json` that `data pack` writes,
  if present: class names, and per shard its member count and byte size, checked on open);
- a brace pattern for the train shards, `shards/train-{000000..000127}.tar` (numeric ranges
  keep their zero padding; `{a,b}` lists too); its val shards are the same pattern with
  `train` replaced by `val` in the file name, expanded against the files that exist.
A shard the pattern names that does not exist, a truncated shard (a member's data running
past the end of the file, or no end-of-archive marker: a cut exactly between two members), or
one whose size or count differs from index.json is a DataError (E705) naming the shard; a
shard is never read short.

How reading is split (the rule, and why): opening a split scans the tar headers once (main
process; a 512-byte header per member, the data skipped by seeking) into an index of
(shard, offset, size, label) per sample. The shards then behave as one map-style dataset of
N samples, so the same `EpochSampler` as for folders deals one global permutation of 0..N-1
to the ranks, and the DataLoader hands each index to exactly one worker: no sample is read
twice or lost in an epoch, whatever the number of ranks and workers or the shard sizes (an
IterableDataset dealing whole shards round-robin to (rank, worker) pairs cannot promise that:
ranks would get different sample counts when shards differ in size, and a mid-epoch resume
would have to replay a shuffle buffer). Resume is `set_position(p)`, exact to the sample, on
any world size. Each worker keeps its own open file per shard and reads a sample with one
seek and one read; shards on local disks or in the page cache serve that well. On storage
without cheap seeks (network object stores), copy the shards to a local disk first.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..lang.errors import DataError
from . import decode
from .datasets import ImageDataset, Transform
from .listing import Paths

INDEX_NAME = "index.json"
INDEX_FORMAT = "archdsl-shards/1"
IMAGE_SUFFIXES = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff", "ppm", "pgm", "pbm",
                  "avif")
_KEY = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")  # WebDataset's base_plus_ext rule
_BRACE = re.compile(r"\{([^{}]*)\}")
_OPEN_FILES = 64  # per worker: the most shard files kept open at once


_MAX_SHARDS = 1_000_000  # a pattern naming more is a typo, not a data set


def _group_size(body: str) -> int:
    r = re.fullmatch(r"(\d+)\.\.(\d+)", body)
    return max(0, int(r.group(2)) - int(r.group(1)) + 1) if r else len(body.split(","))


def expand_braces(pattern: str) -> list[str]:
    """`a-{000..002}.tar` -> a-000.tar, a-001.tar, a-002.tar; `{x,y}` -> x, y (nested left to right)."""
    count = 1
    for group in _BRACE.findall(pattern):
        count *= _group_size(group)
        if count > _MAX_SHARDS:
            raise DataError(f"{pattern[:200]}: the pattern names more than {_MAX_SHARDS:,} shards",
                            hint="check the brace range, e.g. 'train-{000000..000127}.tar'", code="E701")
    m = _BRACE.search(pattern)
    if not m:
        return [pattern]
    body, head, tail = m.group(1), pattern[:m.start()], pattern[m.end():]
    r = re.fullmatch(r"(\d+)\.\.(\d+)", body)
    if r:
        lo, hi = int(r.group(1)), int(r.group(2))
        if hi < lo:
            raise DataError(f"{pattern}: the range {{{body}}} runs backwards", code="E701")
        width = len(r.group(1)) if r.group(1).startswith("0") else 0
        items = [str(i).zfill(width) for i in range(lo, hi + 1)]
    else:
        items = body.split(",")
    return [x for item in items for x in expand_braces(head + item + tail)]


@dataclass
class ShardSource:
    """Where a set of shards is: train and val shard paths, and index.json if there is one."""

    name: str
    train: list[str]
    val: list[str]
    index: dict | None = None

    @property
    def classes(self) -> list[str] | None:
        return list(self.index["classes"]) if self.index else None


def is_shards(spec: str | os.PathLike) -> bool:
    """Whether `spec` names shards (a .tar pattern, or a directory of train-*.tar files)."""
    s = os.fspath(spec)
    if s.endswith(".tar") or "{" in s:
        return True
    return os.path.isdir(s) and any(n.startswith("train-") and n.endswith(".tar")
                                    for n in os.listdir(s))


def find_shards(spec: str | os.PathLike) -> ShardSource:
    """Resolve `spec` (module docstring) to shard paths; missing shards are a DataError."""
    if not isinstance(spec, (str, os.PathLike)):
        raise DataError(f"shards are named by a folder or a pattern (a str or Path), not {type(spec).__name__}",
                        hint="for example 'shards/train-{000000..000127}.tar'", code="E010")
    s = os.fspath(spec)
    if os.path.isdir(s):
        names = sorted(os.listdir(s))
        train = [os.path.join(s, n) for n in names if n.startswith("train-") and n.endswith(".tar")]
        val = [os.path.join(s, n) for n in names if n.startswith("val-") and n.endswith(".tar")]
        folder = s
    else:
        train = expand_braces(s)
        folder = os.path.dirname(s) or "."
        if not os.path.isdir(folder):
            raise DataError(f"{s}: the folder {folder} does not exist", code="E705")
        present = set(os.listdir(folder))
        vals = [os.path.join(os.path.dirname(p), _val_name(os.path.basename(p))) for p in train]
        val = [p for p in vals if os.path.basename(p) in present]
    index = _read_index(folder)
    if index:  # index.json lists every shard: none may be missing
        listed = {sp: [os.path.join(folder, e["name"]) for e in index["splits"][sp]["shards"]]
                  for sp in ("train", "val")}
        if os.path.isdir(s):
            train = listed["train"]
        val = listed["val"]
    for split, paths in (("train", train), ("val", val)):
        if not paths:
            raise DataError(f"{s}: no {split} shards", hint="expected train-*.tar and val-*.tar "
                            "(as `archdsl data pack` writes them), or a pattern such as "
                            "'shards/train-{000000..000127}.tar'", code="E705")
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise DataError(f"{len(missing)} {split} shard(s) missing: {', '.join(missing[:3])}"
                            + (f" and {len(missing) - 3} more" if len(missing) > 3 else ""),
                            hint="every shard the pattern or index.json names must exist; a "
                                 "smaller set would be read silently short", code="E705")
    return ShardSource(s, train, val, index)


def _val_name(name: str) -> str:
    return name.replace("train", "val", 1)


def _read_index(folder: str) -> dict | None:
    path = os.path.join(folder, INDEX_NAME)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            index = json.load(f)
        assert index.get("format") == INDEX_FORMAT
        return index
    except (OSError, ValueError, AssertionError, AttributeError):
        raise DataError(f"{path}: not an index written by `archdsl data pack` ({INDEX_FORMAT})",
                        hint="remove it, or pack the data again", code="E705") from None


@dataclass
class ShardIndex:
    """Every sample of one split: which shard, where its image bytes are, its label."""

    shards: list[str]
    shard: np.ndarray  # int32, per sample
    offset: np.ndarray  # int64, per sample: start of the image member's data
    size: np.ndarray  # int64
    label: np.ndarray  # int64
    keys: Paths  # "key.ext" per sample, for messages

    def __len__(self) -> int:
        return len(self.label)


def index_shards(paths: Sequence[str], expected: list[dict] | None = None) -> ShardIndex:
    """Scan the tar headers of `paths` (module docstring). `expected`: index.json's entries for
    these shards (count and bytes), checked. Truncated or malformed shards are E705."""
    shard, offset, size, label, keys = [], [], [], [], []
    for k, path in enumerate(paths):
        n0 = len(label)
        if expected is not None:
            want = expected[k]["bytes"]
            have = os.path.getsize(path)
            if have != want:
                raise _bad_shard(path, f"{have:,} bytes, index.json says {want:,} (truncated or "
                                       "rewritten since it was packed)")
        for key, ext, off, sz, lab in _scan(path):
            shard.append(k), offset.append(off), size.append(sz), label.append(lab)
            keys.append(f"{key}.{ext}")
        if expected is not None and len(label) - n0 != expected[k]["count"]:
            raise _bad_shard(path, f"{len(label) - n0} samples, index.json says "
                                   f"{expected[k]['count']}")
    return ShardIndex(list(paths), np.array(shard, np.int32), np.array(offset, np.int64),
                      np.array(size, np.int64), np.array(label, np.int64), Paths(keys))


def _bad_shard(path: str, why: str) -> DataError:
    return DataError(f"shard {path}: {why}", hint="copy or pack the shard again; a shard is never "
                     "read short", code="E705")


BLOCK = 512
_SMALL = 3 * BLOCK  # members up to this size (.cls, PAX records) are read with their header


def _members(path: str):
    """(name, data offset, size, is a regular file, data if small) per member of a POSIX tar
    (ustar, GNU and PAX headers), read header by header with one pread each: the image bytes
    are skipped, not read. Python's tarfile does the same walk about ten times slower, which
    matters at a million samples. A header that runs past the end, a bad checksum or a
    missing end-of-archive marker raise DataError (E705)."""
    size_all = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        offset, long_name, pax = 0, None, {}
        while True:
            head = os.pread(fd, BLOCK + _SMALL, offset)
            if len(head) < BLOCK:
                raise _bad_shard(path, f"truncated: no end-of-archive marker after {offset:,} bytes")
            block = head[:BLOCK]
            if block.count(0) == BLOCK:
                return  # end-of-archive marker
            stored = _octal(block[148:156])
            if stored is None or stored != sum(block[:148]) + 256 + sum(block[156:]):
                raise _bad_shard(path, f"corrupt tar header at byte {offset:,} (bad checksum)")
            size = _number(block[124:136])
            kind = block[156:157]
            data = offset + BLOCK
            if data + size > size_all:
                name = long_name or pax.get("path") or _name(block)
                raise _bad_shard(path, f"truncated: member {name} needs {data + size:,} bytes, "
                                       f"the file has {size_all:,}")
            small = head[BLOCK:BLOCK + size] if size <= _SMALL else None
            if kind in (b"L", b"x"):  # GNU long name / PAX records: for the next member
                body = small if small is not None else os.pread(fd, size, data)
                if kind == b"L":
                    long_name = body.rstrip(b"\0").decode("utf-8", "surrogateescape")
                else:
                    pax = _pax(body)
            elif kind == b"g":
                pass  # global PAX records: nothing archdsl reads
            else:
                name = long_name or pax.get("path") or _name(block)
                size = int(pax.get("size", size))
                if kind == b"5":
                    name = name.rstrip("/")  # as tarfile names folders
                yield name, data, size, kind in (b"0", b"\0", b"7"), small
                long_name, pax = None, {}
            offset = data + (size + BLOCK - 1) // BLOCK * BLOCK
    finally:
        os.close(fd)


def _octal(field: bytes) -> int | None:
    text = field.rstrip(b"\0 ").lstrip(b" ")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        return None


def _number(field: bytes) -> int:
    if field[0] & 0x80:  # GNU base-256 for sizes of 8 GiB and more
        return int.from_bytes(field[1:], "big")
    return _octal(field) or 0


def _name(block: bytes) -> str:
    name = block[:100].split(b"\0", 1)[0]
    if block[257:262] == b"ustar":
        prefix = block[345:500].split(b"\0", 1)[0]
        if prefix:
            name = prefix + b"/" + name
    return name.decode("utf-8", "surrogateescape")


def _pax(body: bytes) -> dict[str, str]:
    records, pos = {}, 0
    while pos < len(body):
        space = body.find(b" ", pos)
        if space < 0:
            break
        length = int(body[pos:space])
        key, _, value = body[space + 1:pos + length - 1].partition(b"=")
        records[key.decode("utf-8")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


def _scan(path: str):
    """(key, image ext, data offset, data size, label) per sample of one tar file."""
    current: dict | None = None
    for name, offset, size, is_file, small in _members(path):
        if not is_file:
            continue
        match = _KEY.match(name)
        if not match:
            continue
        key, ext = match.group(1), match.group(2).lower()
        if current is None or current["key"] != key:
            if current is not None:
                yield _sample(path, current)
            current = {"key": key}
        if ext == "cls":
            current["cls"] = small if small is not None else b"?" * 21
        elif ext in IMAGE_SUFFIXES:
            if "image" in current:
                raise _bad_shard(path, f"sample {key} has two images")
            current["image"] = (ext, offset, size)
    if current is not None:
        yield _sample(path, current)


def _sample(path: str, s: dict) -> tuple[str, str, int, int, int]:
    if "image" not in s:
        raise _bad_shard(path, f"sample {s['key']} has no image member "
                               f"(one of {', '.join(IMAGE_SUFFIXES)})")
    if "cls" not in s:
        raise _bad_shard(path, f"sample {s['key']} has no .cls member (its class index)")
    try:
        label = int(s["cls"].decode("ascii").strip())
        assert label >= 0
    except (ValueError, UnicodeDecodeError, AssertionError):
        raise _bad_shard(path, f"sample {s['key']}: .cls holds {s['cls'][:20]!r}, not a class "
                               "index") from None
    ext, off, size = s["image"]
    return s["key"], ext, off, size, label


def open_split(source: ShardSource, split: str) -> ShardIndex:
    """Index the `split` ("train" or "val") shards of `source`, checked against index.json:
    from the index-<split>.npz that `data pack` wrote beside them when every shard still has
    the size and sample count index.json records, else by walking the tar headers."""
    paths = source.train if split == "train" else source.val
    expected = None
    if source.index:
        by_name = {e["name"]: e for e in source.index["splits"][split]["shards"]}
        if all(os.path.basename(p) in by_name for p in paths):
            expected = [by_name[os.path.basename(p)] for p in paths]
    if expected is not None:
        saved = _load_saved(source, split, paths, expected)
        if saved is not None:
            return saved
    return index_shards(paths, expected)


def verify(source: ShardSource, progress: Callable[[str], None] | None = None) -> int:
    """Hash every shard index.json lists and compare with its sha256 (reads every byte);
    returns the number of shards checked. A mismatch is E705 naming the shard."""
    if not source.index:
        raise DataError(f"{source.name}: no index.json, so no sha256 to check the shards against",
                        hint="shards written by `archdsl data pack` carry one", code="E705")
    folder, checked = _folder_of(source), 0
    for split in ("train", "val"):
        for e in source.index["splits"][split]["shards"]:
            path = os.path.join(folder, e["name"])
            h = hashlib.sha256()
            try:
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
            except OSError as err:
                raise _bad_shard(path, f"cannot read: {err.strerror or err}") from None
            if h.hexdigest() != e["sha256"]:
                raise _bad_shard(path, "its sha256 differs from index.json's (corrupt, or rewritten "
                                       "since it was packed)")
            checked += 1
            if progress:
                progress(e["name"])
    return checked


def _folder_of(source: ShardSource) -> str:
    return source.name if os.path.isdir(source.name) else (os.path.dirname(source.name) or ".")


def saved_index_name(split: str) -> str:
    return f"index-{split}.npz"


def save_index(index: ShardIndex, path: str) -> None:
    """Write `index` (shards by position, not by path) as an .npz `_load_saved` reads back."""
    blob, lengths = index.keys.parts()
    with open(path, "wb") as f:
        np.savez(f, shard=index.shard, offset=index.offset, size=index.size, label=index.label,
                 key_blob=np.frombuffer(blob, np.uint8), key_lengths=lengths)
        f.flush()
        os.fsync(f.fileno())


def _load_saved(source: ShardSource, split: str, paths: list[str],
                expected: list[dict]) -> ShardIndex | None:
    folder = os.path.dirname(paths[0])
    path = os.path.join(folder, saved_index_name(split))
    if not os.path.isfile(path):
        return None
    if any(os.path.getsize(p) != e["bytes"] for p, e in zip(paths, expected)):
        return None  # a shard changed: the header walk names it (E705)
    names = [e["name"] for e in source.index["splits"][split]["shards"]]
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("shard", "offset", "size", "label", "key_blob", "key_lengths")}
    except (OSError, ValueError, KeyError):
        return None
    shard = arrays["shard"]
    counts = np.bincount(shard, minlength=len(names)) if len(shard) else np.zeros(len(names), int)
    if len(counts) != len(names) or any(counts[names.index(e["name"])] != e["count"] for e in expected):
        return None
    keys = Paths(_blob=arrays["key_blob"].tobytes(), _lengths=arrays["key_lengths"])
    wanted = [names.index(os.path.basename(p)) for p in paths]
    if wanted != list(range(len(names))):  # a pattern naming some of the shards, in its order
        new_id = np.full(len(names), -1, np.int64)
        new_id[wanted] = np.arange(len(wanted))
        keep = np.flatnonzero(new_id[shard] >= 0)
        keep = keep[np.argsort(new_id[shard[keep]], kind="stable")]
        return ShardIndex(list(paths), new_id[shard[keep]].astype(np.int32), arrays["offset"][keep],
                          arrays["size"][keep], arrays["label"][keep], Paths([keys[i] for i in keep]))
    return ShardIndex(list(paths), shard, arrays["offset"], arrays["size"], arrays["label"], keys)


class ShardDataset(ImageDataset):
    """The samples of a ShardIndex, with the folder datasets' contract (datasets.py)."""

    def __init__(self, index: ShardIndex, transform: Transform | None, *, channels: int = 3,
                 seed: int = 0, convert: Callable = decode.convert):
        super().__init__(index.label, transform, channels=channels, seed=seed, convert=convert)
        self.index = index
        self._files: dict[int, object] = {}
        self._pid = os.getpid()

    def __getstate__(self):  # open files stay in the process that opened them
        state = dict(self.__dict__)
        state["_files"] = {}
        return state

    def name(self, i: int) -> str:
        return f"{self.index.shards[self.index.shard[i]]}:{self.index.keys[i]}"

    def open(self, i: int):
        data = self._read(i)
        return decode.open_image(self.name(i), fp=io.BytesIO(data))

    def _read(self, i: int) -> bytes:
        if self._pid != os.getpid():  # forked into a worker: never share file offsets
            self._files, self._pid = {}, os.getpid()
        k = int(self.index.shard[i])
        f = self._files.pop(k, None)
        if f is None:
            if len(self._files) >= _OPEN_FILES:
                self._files.pop(next(iter(self._files))).close()
            f = open(self.index.shards[k], "rb")
        self._files[k] = f  # most recently used last
        f.seek(int(self.index.offset[i]))
        size = int(self.index.size[i])
        data = f.read(size)
        if len(data) != size:
            raise decode.BadImage(self.name(i), "shard truncated or rewritten since it was indexed")
        return data
