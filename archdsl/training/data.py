"""Training data: where images come from, as datasets the streaming loop reads.

Every source ends as the same thing (archdsl/data's contract): a train and a val dataset keyed
by `(index, epoch)` whose items are `(uint8 image (C, H, W) at the network's input, label)` or a
`BadSample(path, message)`, made by the recipe's per-image transforms (archdsl.data.transforms)
with a per-sample `random.Random`; `archdsl.data.collate` turns a list of them into a `Batch`.
Nothing is decoded before the first step: a folder is listed by names, shards by their tar
headers, and images are opened, cropped and decoded in DataLoader workers.

- `"digits"`: scikit-learn's bundled 8x8 handwritten digits (real data, no download), split
  once with a fixed seed, resized to the network's input once, and served as PIL images through
  the same transforms (with the digits recipe, those leave the pixels as they are).
- a directory in ImageFolder layout (`train/<class>/...`, `val/<class>/...`): archdsl.data.listing.
- WebDataset tar shards (a directory of train-*.tar/val-*.tar or a brace pattern): archdsl.data.shards.
- a `(train, val)` pair of torch Datasets of (image (C, H, W) tensor in [0, 1] or uint8, label).

Loading is two steps because data and network size each other: `probe` reads what the data
says (classes, channels, a natural input size, its identity) without decoding pixels beyond a
few headers; the network is resolved with that; `materialize` then builds the datasets for
the network's input and the run's recipe, and picks the normalization.
"""
from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from ..data import decode
from ..data.datasets import FolderDataset, ImageDataset
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform, train_transform
from ..lang.errors import DataError
from ..lang.recipe import TrainRecipe
from ..report import require_memory

DIGITS_SPLIT_SEED = 0
DIGITS_VAL_FRACTION = 0.2
DIGITS_SIZE = (32, 32)  # 8x8 digits upsampled; 224x224 would add 49x the compute and no information
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}  # else read as RGB
HEADER_SAMPLE = 64  # files whose headers decide grey or RGB (spread over the listing)
MEASURE_LIMIT = 512  # images decoded to measure mean/std (`normalize measured` on files)
# The paper's augmentations are tuned for 300 ImageNet epochs. On 8x8 digits a mirror flip
# changes what a digit is, and crops down to 8% of the image, RandAugment, Mixup/CutMix and
# erasing keep a few-epoch run from fitting at all (measured: 5 epochs of the full ConvNeXt
# recipe leave ConvNeXt-Atto at chance). They stay one --set away. The images are already at
# the network's input, so evaluation takes them whole (crop_pct 1).
DIGITS_RECIPE = {"flip": False, "rrc": False, "randaugment": None, "mixup": 0.0, "cutmix": 0.0,
                 "erasing": 0.0, "crop_pct": 1.0}


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
    identity: dict | None = None  # {"path", "files", "fingerprint"}: what a checkpoint records
    in_memory: bool = False  # decoded already (digits, tensors): no worker processes needed
    # (shape, transform maker (train: bool) -> transform, seed) -> (train, val) datasets
    _make: Callable[..., tuple[Dataset, Dataset]] | None = field(default=None, repr=False)


@dataclass
class DataBundle:
    """Datasets at the network's input shape, and what the batch stage needs to know."""

    info: DataInfo
    train: Dataset
    val: Dataset
    shape: tuple[int, int, int]  # (C, H, W)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    workers: int = 0  # DataLoader worker processes


def probe(data: Any, skip_bad: bool = False) -> DataInfo:
    """Identify a data source: "digits", an ImageFolder directory, shards, or a (train, val) pair."""
    if isinstance(data, str) and data == "digits":
        return _probe_digits()
    if isinstance(data, (str, os.PathLike)):
        from ..data.shards import is_shards

        if is_shards(data) and not os.path.isdir(os.path.join(os.fspath(data), "train")):
            return _probe_shards(os.fspath(data))
        return _probe_folder(os.fspath(data), skip_bad)
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(d, Dataset) for d in data):
        return _probe_pair(data[0], data[1])
    raise DataError(f"cannot use {type(data).__name__} as training data",
                    hint='pass "digits", a directory with train/ and val/, shards, or a (train, val) '
                         "pair of torch Datasets", code="E701")


def materialize(info: DataInfo, shape: tuple[int, int, int], recipe: TrainRecipe | None = None,
                seed: int = 0) -> DataBundle:
    """The train and val datasets at `shape` = (C, H, W) with the recipe's transforms, and the
    normalization the recipe asks for."""
    assert info._make is not None
    recipe = recipe or TrainRecipe()
    c, h, w = shape
    if c not in (1, 3):
        raise DataError(f"images have 1 or 3 channels; the network takes {c}",
                        hint="set `input` to 1xHxW or 3xHxW", code="E701")

    # RandAugment's fill colour is the normalization mean (timm's img_mean); measured statistics
    # are not known before the datasets exist, so those runs fill with ImageNet's mean.
    fill_mean = IMAGENET_MEAN if recipe.normalize == "measured" else normalization(recipe, c)[0]

    def transform(train: bool):
        if not train:
            return eval_transform((h, w), crop_pct=recipe.crop_pct, interpolation=recipe.interpolation,
                                  channels=c)
        return train_transform((h, w), rrc=recipe.rrc, flip=recipe.flip, randaugment=recipe.randaugment,
                               color_jitter=recipe.color_jitter, interpolation=recipe.interpolation,
                               channels=c, mean=fill_mean)

    train, val = info._make(shape, transform, seed)
    mean, std = normalization(recipe, c, train)
    workers = recipe.workers if recipe.workers is not None else (
        0 if info.in_memory else min(4, os.cpu_count() or 1))
    return DataBundle(info, train, val, shape, mean, std, workers)


def normalization(recipe: TrainRecipe, channels: int, train: Dataset | None = None
                  ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) in [0, 1] units: the recipe's `normalize` (see lang/recipe.py): `auto` is
    ImageNet's for RGB and the data's own for grey images."""
    mode = recipe.normalize
    if mode == "auto":
        mode = "imagenet" if channels == 3 else "measured"
    if mode == "explicit":
        mean, std = recipe.mean or (), recipe.std or ()
        if len(mean) == 1 and channels > 1:
            mean, std = mean * channels, std * channels
        if len(mean) != channels:
            raise DataError(f"normalize gives {len(mean)} mean/std values; the network takes {channels} "
                            "channels", hint="give one value per channel (or one for all)", code="E701")
        return tuple(mean), tuple(std)
    if mode == "imagenet":
        if channels == 3:
            return IMAGENET_MEAN, IMAGENET_STD
        # grey: the luma of ImageNet's mean, and its mean std
        return ((0.299 * IMAGENET_MEAN[0] + 0.587 * IMAGENET_MEAN[1] + 0.114 * IMAGENET_MEAN[2],),
                (sum(IMAGENET_STD) / 3,))
    if train is None:
        return (0.5,) * channels, (0.25,) * channels  # only to build the transform's fill colour
    return channel_stats(train)


def channel_stats(ds: Dataset, limit: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] units, over at most `limit` evenly spaced images
    (MEASURE_LIMIT for files, which must be decoded) through the evaluation geometry."""
    images = getattr(ds, "images", None)
    if isinstance(images, torch.Tensor):  # decoded already (digits)
        idx = torch.linspace(0, len(images) - 1, min(limit, len(images))).long()
        x = images[idx]
    else:
        n = len(ds)
        idx = torch.linspace(0, n - 1, min(MEASURE_LIMIT, n)).long().tolist()
        got = [ds[i] for i in idx]
        x = torch.stack([g[0] for g in got if isinstance(g, tuple)])
    x = to_float(x).transpose(0, 1).flatten(1)  # (C, N*H*W)
    std = x.std(dim=1).clamp_min(1e-3)
    return tuple(x.mean(dim=1).tolist()), tuple(std.tolist())


def to_float(x: torch.Tensor) -> torch.Tensor:
    """Images as float in [0, 1], whether they came as uint8 or float."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def fingerprint(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(np.ascontiguousarray(p).tobytes())
        elif isinstance(p, (bytes, bytearray)):
            h.update(p)
        else:
            h.update(str(p).encode("utf-8", "surrogateescape"))
        h.update(b"\0")
    return h.hexdigest()[:16]


class TensorImages(ImageDataset):
    """Decoded images (uint8 (N, C, H, W)) served as PIL images through the per-image
    transforms, so in-memory data takes the same path as files."""

    def __init__(self, images: torch.Tensor, labels, transform, *, seed: int = 0, name: str = "image"):
        super().__init__(np.asarray(labels), transform, channels=images.shape[1], seed=seed)
        self.images, self.label_name = images, name

    def name(self, i: int) -> str:
        return f"{self.label_name}[{i}]"

    def open(self, i: int):
        a = self.images[i].numpy()
        return Image.fromarray(a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0))


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
                    identity={"path": "digits", "files": n,
                              "fingerprint": fingerprint(digits.images.astype(np.float64), digits.target)},
                    in_memory=True, _make=_digits)


def _digits(shape: tuple[int, int, int], transform, seed: int) -> tuple[Dataset, Dataset]:
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
    return (TensorImages(x[tr], y[tr], transform(True), seed=seed, name="digits"),
            TensorImages(x[va], y[va], transform(False), seed=seed, name="digits val"))


# ---------------------------------------------------------------- ImageFolder and shards

def _channels_of(opener: Callable[[int], Any], n: int) -> int:
    """1 when the headers of up to HEADER_SAMPLE files spread over the set are all grey, else 3.
    A file that cannot be opened is left to the training loop (skip or stop)."""
    modes = set()
    for i in sorted({int(k) for k in np.linspace(0, n - 1, min(HEADER_SAMPLE, n))}):
        try:
            with opener(i) as im:
                modes.add(im.mode)
        except (decode.BadImage, OSError):
            continue
    return 1 if modes and modes <= GREY_MODES else 3


def _probe_folder(root: str, skip_bad: bool) -> DataInfo:
    from ..data.listing import list_folder

    folder = list_folder(root, skip_bad=skip_bad)
    train, val = folder.train, folder.val
    channels = _channels_of(lambda i: decode.open_image(train.files[i]), len(train))
    rel = [os.path.relpath(p, root) for p in (*train.files, *val.files)]
    identity = {"path": os.path.abspath(root), "files": len(rel),
                "fingerprint": fingerprint("\n".join(rel), train.labels, val.labels)}

    def make(shape, transform, seed):
        return (FolderDataset(train.files, train.labels, transform(True), channels=shape[0], seed=seed),
                FolderDataset(val.files, val.labels, transform(False), channels=shape[0], seed=seed))

    return DataInfo(root, classes=len(folder.classes), channels=channels, size=None,
                    n_train=len(train), n_val=len(val), class_names=list(folder.classes),
                    skipped=[p for p, _ in train.skipped + val.skipped], identity=identity, _make=make)


def _probe_shards(spec: str) -> DataInfo:
    from ..data.shards import ShardDataset, find_shards, open_split

    source = find_shards(spec)
    train, val = open_split(source, "train"), open_split(source, "val")
    labels = np.concatenate([np.asarray(train.label), np.asarray(val.label)])
    names = source.classes or [str(i) for i in range(int(labels.max()) + 1)]
    probe_ds = ShardDataset(train, None)
    channels = _channels_of(probe_ds.open, len(train))
    identity = {"path": os.path.abspath(spec), "files": len(train) + len(val),
                "fingerprint": fingerprint("\n".join(map(str, train.keys)), "\n".join(map(str, val.keys)),
                                           labels)}

    def make(shape, transform, seed):
        return (ShardDataset(train, transform(True), channels=shape[0], seed=seed),
                ShardDataset(val, transform(False), channels=shape[0], seed=seed))

    return DataInfo(spec, classes=len(names), channels=channels, size=None, n_train=len(train),
                    n_val=len(val), class_names=names, identity=identity, _make=make)


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

    def make(shape, transform, seed):
        return (PairImages(train, shape, transform(True), seed=seed, name="train"),
                PairImages(val, shape, transform(False), seed=seed, name="val"))

    return DataInfo("dataset", classes=classes, channels=x.shape[0], size=(x.shape[1], x.shape[2]),
                    n_train=len(train), n_val=len(val), class_names=names, in_memory=True, _make=make)


def _as_tensor(x) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise DataError(f"dataset images must be tensors or arrays, got {type(x).__name__}",
                        code="E701")
    return x


class PairImages(ImageDataset):
    """A user's Dataset of (tensor (C, H, W) in [0, 1] or uint8, label), served as 8-bit PIL
    images through the per-image transforms (the label is read with the image)."""

    def __init__(self, ds: Dataset, shape, transform, *, seed: int = 0, name: str = "train"):
        self.ds, self.split = ds, name
        super().__init__(np.zeros(len(ds), dtype=np.int64), transform, channels=shape[0], seed=seed)

    def name(self, i: int) -> str:
        return f"{self.split}[{i}]"

    def open(self, i: int):
        x, y = self.ds[i]
        self.labels[i] = int(y)
        x = _as_tensor(x)
        if x.shape[0] not in (1, 3):
            raise DataError(f"{self.split} image {i} has {x.shape[0]} channels; images have 1 or 3",
                            code="E701")
        if x.dtype != torch.uint8:
            x = x.float().clamp(0, 1).mul(255).round().to(torch.uint8)
        a = x.numpy()
        return Image.fromarray(a[0] if a.shape[0] == 1 else np.ascontiguousarray(a.transpose(1, 2, 0)))
