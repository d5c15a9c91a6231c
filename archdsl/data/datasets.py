"""Map-style datasets keyed by (index, epoch): `FolderDataset` (files on disk); shards.py adds
`ShardDataset` (members of tar shards) on the same base.

`ds[(index, epoch)]` opens the image lazily (decode.open_image), hands it to the transform
with the sample's own `random.Random(sample_seed(seed, epoch, index))` and a `convert` that
loads the pixels as "L" or "RGB" (decode.convert with this dataset's channel count), and
returns (uint8 tensor (C, H, W), label). A file that cannot be decoded returns
`BadSample(path, message)` instead of raising, so one bad JPEG in epoch 7 is the training
loop's decision (skip and count, or stop), not a dead DataLoader worker. `ds[i]` with a plain
int means epoch 0.

The transform has the contract's signature `transform(img, rng, convert) -> uint8 tensor`;
`transform=None` returns the whole image converted (for inspection and tests).
"""
from __future__ import annotations

import functools
import os
import random
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from . import decode
from .collate import BadSample
from .seeding import sample_seed

Transform = Callable[[Any, random.Random, Callable], torch.Tensor]


class ImageDataset(Dataset):
    """The shared per-sample pipeline; subclasses say how to open sample `i`."""

    def __init__(self, labels: Sequence[int] | np.ndarray, transform: Transform | None, *,
                 channels: int = 3, seed: int = 0, convert: Callable = decode.convert):
        self.labels = np.asarray(labels, dtype=np.int64)
        self.transform, self.channels, self.seed = transform, channels, seed
        self.convert = functools.partial(convert, channels=channels)

    def __len__(self) -> int:
        return len(self.labels)

    def name(self, i: int) -> str:
        raise NotImplementedError

    def open(self, i: int):
        raise NotImplementedError

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int] | BadSample:
        index, epoch = (key, 0) if isinstance(key, (int, np.integer)) else key
        index, epoch = int(index), int(epoch)
        try:
            with self.open(index) as img:
                if self.transform is None:
                    x = decode.to_tensor(self.convert(img))
                else:
                    x = self.transform(img, random.Random(sample_seed(self.seed, epoch, index)),
                                       self.convert)
        except decode.BadImage as e:
            return BadSample(self.name(index), e.reason)
        except OSError as e:  # the file went away or became unreadable after listing
            return BadSample(self.name(index), f"cannot read: {e.strerror or e}")
        return x, int(self.labels[index])


class FolderDataset(ImageDataset):
    """Image files on disk (`files`: a listing.Paths or a list of paths) with their labels."""

    def __init__(self, files: Sequence[str], labels: Sequence[int] | np.ndarray,
                 transform: Transform | None, *, channels: int = 3, seed: int = 0,
                 convert: Callable = decode.convert):
        super().__init__(labels, transform, channels=channels, seed=seed, convert=convert)
        if len(files) != len(self.labels):
            raise ValueError(f"FolderDataset: {len(files)} files but {len(self.labels)} labels")
        self.files = files

    def name(self, i: int) -> str:
        return os.fsdecode(self.files[i])

    def open(self, i: int):
        return decode.open_image(self.files[i])


GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def probe_channels(ds: ImageDataset, limit: int = 64) -> int:
    """1 when the headers of up to `limit` evenly spaced samples are all grey modes, else 3.
    Headers only; unreadable samples are passed over (training reports them). A colour image
    in a set judged grey is converted to grey by `convert`, and the other way round."""
    n = len(ds)
    picks = sorted({int(i) for i in np.linspace(0, n - 1, min(limit, n))}) if n else []
    modes = set()
    for i in picks:
        try:
            with ds.open(i) as img:
                modes.add(img.mode)
        except (decode.BadImage, OSError):
            continue
    return 1 if modes and modes <= GREY_MODES else 3
