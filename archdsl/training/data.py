"""Training data: where images come from and how they reach the network's input size.

Every source ends as the same thing, a train and a val `Dataset` of `(image, label)` where
`image` is a (C, H, W) tensor at the network's input size (uint8 for decoded images, float in
[0, 1] for datasets handed in through the API), so nothing downstream asks where data came from.

- `"digits"`: scikit-learn's bundled 8x8 handwritten digits (real data, no download), split
  once with a fixed seed (independent of the training seed, so runs compare on one val set).
- a directory in ImageFolder layout: `train/<class>/*.png`, `val/<class>/*.jpg`, decoded with
  Pillow. Every image is decoded once before training, so a corrupt file fails (or, with
  `skip_bad`, is skipped and counted) before the first step rather than in epoch 7.
- a `(train, val)` pair of torch Datasets.

Loading is two steps because data and network size each other: `probe` reads what the data
says (classes, channels, a natural input size) without decoding pixels; the network is
resolved with that; `materialize` then decodes at the network's input size.
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, TensorDataset

from ..lang.errors import DataError
from ..report import require_memory

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm", ".pbm"}
DIGITS_SPLIT_SEED = 0
DIGITS_VAL_FRACTION = 0.2
DIGITS_SIZE = (32, 32)  # 8x8 digits upsampled; 224x224 would add 49x the compute and no information
GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}  # anything else (RGB, P, CMYK...) is read as RGB
CACHE_LIMIT_BYTES = 2 << 30  # decoded ImageFolder images kept in memory up to this size
# The paper's augmentations are tuned for 300 ImageNet epochs. On 8x8 digits a mirror flip
# changes what a digit is, and crops down to 8% of the image, RandAugment, Mixup/CutMix and
# erasing keep a few-epoch run from fitting at all (measured: 5 epochs of the full ConvNeXt
# recipe leave ConvNeXt-Atto at chance). They stay one --set away.
DIGITS_RECIPE = {"flip": False, "rrc": False, "randaugment": None, "mixup": 0.0, "cutmix": 0.0,
                 "erasing": 0.0}
LAYOUT_HINT = "expected DIR/train/<class>/<image> and DIR/val/<class>/<image>"


@dataclass
class DataInfo:
    """What a data source says about itself before any pixel is decoded."""

    name: str
    classes: int
    channels: int
    size: tuple[int, int] | None  # natural (H, W), used unless the user sets `input`
    n_train: int
    n_val: int
    class_names: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # unreadable files left out (skip_bad)
    recipe: dict[str, Any] = field(default_factory=dict)  # recipe defaults this data calls for
    recipe_why: str = ""
    _materialize: Callable[..., tuple[Dataset, Dataset]] | None = field(default=None, repr=False)


@dataclass
class DataBundle:
    """Datasets at the network's input shape, and what the batch pipeline needs to know."""

    info: DataInfo
    train: Dataset
    val: Dataset
    shape: tuple[int, int, int]  # (C, H, W)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    workers: int = 0  # DataLoader workers worth using (decoding on the fly)


def probe(data: Any, skip_bad: bool = False) -> DataInfo:
    """Identify a data source: "digits", an ImageFolder directory, or a (train, val) pair."""
    if isinstance(data, str) and data == "digits":
        return _probe_digits()
    if isinstance(data, (str, os.PathLike)):
        return _probe_folder(Path(data), skip_bad)
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(d, Dataset) for d in data):
        return _probe_pair(data[0], data[1])
    raise DataError(f"cannot use {type(data).__name__} as training data",
                    hint='pass "digits", a directory with train/ and val/, or a (train, val) '
                         "pair of torch Datasets", code="E701")


def materialize(info: DataInfo, shape: tuple[int, int, int], skip_bad: bool = False) -> DataBundle:
    """Decode/resize the data to `shape` = (C, H, W) and measure its channel statistics."""
    assert info._materialize is not None
    train, val = info._materialize(shape, skip_bad)
    if len(train) == 0 or len(val) == 0:
        raise DataError(f"{info.name}: no usable images left in "
                        f"{'train' if len(train) == 0 else 'val'} after skipping unreadable ones",
                        code="E703")
    mean, std = channel_stats(train)
    workers = 0 if isinstance(train, (TensorDataset, _Converted)) else min(4, os.cpu_count() or 1)
    return DataBundle(info, train, val, shape, mean, std, workers)


def channel_stats(ds: Dataset, limit: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] units, over at most `limit` evenly spaced images."""
    if isinstance(ds, TensorDataset):
        x = ds.tensors[0]
        idx = torch.linspace(0, len(x) - 1, min(limit, len(x))).long()
        x = x[idx]
    else:
        n = len(ds)
        idx = torch.linspace(0, n - 1, min(limit, n)).long().tolist()
        x = torch.stack([torch.as_tensor(ds[i][0]) for i in idx])
    x = to_float(x).transpose(0, 1).flatten(1)  # (C, N*H*W)
    std = x.std(dim=1).clamp_min(1e-3)
    return tuple(x.mean(dim=1).tolist()), tuple(std.tolist())


def to_float(x: torch.Tensor) -> torch.Tensor:
    """Images as float in [0, 1], whether they came as uint8 or float."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


# ---------------------------------------------------------------- digits

def _probe_digits() -> DataInfo:
    from sklearn.datasets import load_digits

    digits = load_digits()
    n = len(digits.target)
    n_val = math.ceil(n * DIGITS_VAL_FRACTION)
    return DataInfo("digits", classes=10, channels=1, size=DIGITS_SIZE, n_train=n - n_val,
                    n_val=n_val, class_names=[str(i) for i in range(10)],
                    recipe=dict(DIGITS_RECIPE),
                    recipe_why="8x8 digits: no mirror flips, no ImageNet-strength augmentation",
                    _materialize=lambda shape, skip_bad: _digits(shape))


def _digits(shape: tuple[int, int, int]) -> tuple[Dataset, Dataset]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.from_numpy(digits.images).float().div(16.0).unsqueeze(1)  # (N, 1, 8, 8) in [0, 1]
    y = torch.from_numpy(digits.target).long()
    tr, va = train_test_split(np.arange(len(y)), test_size=DIGITS_VAL_FRACTION,
                              random_state=DIGITS_SPLIT_SEED, stratify=digits.target)
    c, h, w = shape
    # the whole set is resized at once: a float copy and the uint8 images at the network's input
    require_memory(len(y) * h * w * (4 + c), "cpu", f"digits at {c}x{h}x{w}",
                   hint="digits are 8x8 images: train at a smaller input (`--set input=1x32x32`)", code="E902")
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    x = x.clamp(0, 1).mul(255).round().to(torch.uint8).expand(-1, c, -1, -1).contiguous()
    tr, va = torch.from_numpy(tr), torch.from_numpy(va)
    return TensorDataset(x[tr], y[tr]), TensorDataset(x[va], y[va])


# ---------------------------------------------------------------- ImageFolder

def _list_split(root: Path, split: str) -> tuple[list[str], list[tuple[Path, str]]]:
    """Class names and (file, class) pairs under root/split, or a DataError saying what is wrong."""
    d = root / split
    if not d.is_dir():
        found = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
        raise DataError(f"{root}: no `{split}/` folder (found: {', '.join(found) or 'nothing'})",
                        hint=LAYOUT_HINT, code="E701")
    entries = sorted(p for p in d.iterdir() if not p.name.startswith("."))
    stray = [p.name for p in entries if not p.is_dir()]
    if stray:
        raise DataError(f"{d}: files outside class folders: {', '.join(stray[:3])}"
                        + (f" and {len(stray) - 3} more" if len(stray) > 3 else ""),
                        hint=LAYOUT_HINT, code="E701")
    classes = [p.name for p in entries]
    if not classes:
        raise DataError(f"{d}: no class folders", hint=LAYOUT_HINT, code="E703")
    files = []
    for c in classes:
        images = sorted(p for p in (d / c).rglob("*")
                        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                        and not p.name.startswith("."))
        if not images:
            raise DataError(f"{d / c}: class folder has no images",
                            hint="image files end in " + ", ".join(sorted(IMAGE_EXTENSIONS)),
                            code="E703")
        files += [(p, c) for p in images]
    return classes, files


def _probe_folder(root: Path, skip_bad: bool) -> DataInfo:
    from PIL import Image

    if not root.exists():
        raise DataError(f"data directory {root} does not exist",
                        hint='use --data digits for the bundled digits, or ' + LAYOUT_HINT,
                        code="E701")
    if not root.is_dir():
        raise DataError(f"{root} is not a directory", hint=LAYOUT_HINT, code="E701")
    classes, train = _list_split(root, "train")
    val_classes, val = _list_split(root, "val")
    unknown = sorted(set(val_classes) - set(classes))
    if unknown:
        raise DataError(f"{root / 'val'}: classes not in train/: {', '.join(unknown)}",
                        hint="val/ must use the class folders of train/", code="E701")

    # Headers only (Image.open is lazy): modes decide the channel count, and files that are not
    # images at all are caught here. Truncated pixel data is caught by the full decode later.
    modes: set[str] = set()
    skipped: list[str] = []
    for files in (train, val):
        keep = []
        for path, c in files:
            try:
                with Image.open(path) as im:
                    modes.add(im.mode)
                keep.append((path, c))
            except Exception as e:  # PIL raises many kinds; all mean "not an image we can read"
                if not skip_bad:
                    raise _bad_image(path, e) from None
                skipped.append(str(path))
        files[:] = keep
    grey = bool(modes) and modes <= GREY_MODES
    index = {c: i for i, c in enumerate(classes)}
    info = DataInfo(str(root), classes=len(classes), channels=1 if grey else 3, size=None,
                    n_train=len(train), n_val=len(val), class_names=classes, skipped=skipped)
    info._materialize = lambda shape, skip: _folder(info, train, val, index, shape, skip)
    return info


def _bad_image(path: Path, e: Exception) -> DataError:
    return DataError(f"cannot decode image {path}: {type(e).__name__}: {e}",
                     hint="pass --skip-bad-images (API: skip_bad_images=True) to leave unreadable "
                          "images out and count them", code="E702")


def decode_image(path: Path, shape: tuple[int, int, int]) -> torch.Tensor:
    """One image file as a uint8 (C, H, W) tensor, converted and resized with Pillow."""
    from PIL import Image

    c, h, w = shape
    with Image.open(path) as im:
        im = im.convert("L" if c == 1 else "RGB")
        if im.size != (w, h):
            im = im.resize((w, h), Image.Resampling.BILINEAR)
        a = np.asarray(im, dtype=np.uint8)
    t = torch.from_numpy(a.copy())
    return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


class FolderDataset(Dataset):
    """ImageFolder files decoded on access (used when they would not fit in memory)."""

    def __init__(self, files: list[tuple[Path, int]], shape: tuple[int, int, int]):
        self.files, self.shape = files, shape

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.files[i]
        return decode_image(path, self.shape), label


def _folder(info: DataInfo, train, val, index, shape, skip_bad) -> tuple[Dataset, Dataset]:
    """Decode every image once (validating it); keep the pixels when they fit in memory."""
    cache = (info.n_train + info.n_val) * math.prod(shape) <= CACHE_LIMIT_BYTES

    def load(files: list[tuple[Path, str]]) -> Dataset:
        def one(pc):
            try:
                return decode_image(pc[0], shape)
            except Exception as e:
                if not skip_bad:
                    raise _bad_image(pc[0], e) from None
                return None
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            images = list(pool.map(one, files))
        good = [(img, index[c], p) for img, (p, c) in zip(images, files) if img is not None]
        info.skipped += [str(p) for img, (p, _) in zip(images, files) if img is None]
        if not good:
            return TensorDataset(torch.empty(0, *shape, dtype=torch.uint8), torch.empty(0).long())
        if cache:
            return TensorDataset(torch.stack([g[0] for g in good]),
                                 torch.tensor([g[1] for g in good]))
        return FolderDataset([(g[2], g[1]) for g in good], shape)

    return load(train), load(val)


# ---------------------------------------------------------------- a pair of Datasets

def _probe_pair(train: Dataset, val: Dataset) -> DataInfo:
    for name, ds in (("train", train), ("val", val)):
        try:
            n = len(ds)  # type: ignore[arg-type]
        except TypeError:
            raise DataError(f"the {name} dataset has no length", code="E701") from None
        if n == 0:
            raise DataError(f"the {name} dataset is empty", code="E703")
    x, _ = train[0]
    x = _as_tensor(x)
    if x.ndim != 3:
        raise DataError(f"train[0] image has shape {tuple(x.shape)}; expected (C, H, W)",
                        code="E701")
    names = getattr(train, "classes", None)
    if isinstance(names, int):
        classes, names = names, [str(i) for i in range(names)]
    elif names is not None:
        names = [str(c) for c in names]
        classes = len(names)
    else:
        targets = getattr(train, "targets", None)
        if targets is None:
            targets = [int(train[i][1]) for i in range(len(train))]
        classes = int(torch.as_tensor(targets).max()) + 1
        names = [str(i) for i in range(classes)]
    info = DataInfo("dataset", classes=classes, channels=x.shape[0],
                    size=(x.shape[1], x.shape[2]), n_train=len(train), n_val=len(val),
                    class_names=names)
    info._materialize = lambda shape, skip: (_Converted(train, shape), _Converted(val, shape))
    return info


def _as_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    a = np.asarray(x)  # PIL images and arrays
    t = torch.from_numpy(a.copy())
    return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1) if t.ndim == 3 else t


class _Converted(Dataset):
    """A user's dataset with images brought to the network's (C, H, W)."""

    def __init__(self, ds: Dataset, shape: tuple[int, int, int]):
        self.ds, self.shape = ds, shape

    def __len__(self) -> int:
        return len(self.ds)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x, y = self.ds[i]
        x = _as_tensor(x)
        c, h, w = self.shape
        if x.shape[0] != c:
            if x.shape[0] != 1:
                raise DataError(f"image {i} has {x.shape[0]} channels; the network takes {c}",
                                code="E701")
            x = x.expand(c, -1, -1)
        if tuple(x.shape[1:]) != (h, w):
            x = F.interpolate(to_float(x)[None], size=(h, w), mode="bilinear",
                              align_corners=False, antialias=True)[0].clamp(0, 1)
        return x, int(y)
