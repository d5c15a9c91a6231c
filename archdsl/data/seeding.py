"""One seed per image per epoch: `sample_seed(seed, epoch, index)`.

Every random per-image transform draws from `random.Random(sample_seed(seed, epoch, index))`,
so an image's augmentation depends only on (seed, epoch, index): not on the number of
DataLoader workers or processes, not on where a run was resumed.

The mix is BLAKE2b over the three numbers (64-bit little-endian each), truncated to 64 bits:
a cryptographic hash, so neighbouring indices or epochs give unrelated streams (a plain
`seed + index` would make image i of epoch e+1 repeat image i+1 of epoch e).
"""
from __future__ import annotations

import hashlib
import random
import struct

_MAX = 2 ** 64


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 64-bit seed for image `index` in `epoch` of a run seeded with `seed` (all >= 0)."""
    for name, v in (("seed", seed), ("epoch", epoch), ("index", index)):
        if not 0 <= v < _MAX:
            raise ValueError(f"sample_seed: {name}={v} is not in [0, 2**64)")
    digest = hashlib.blake2b(struct.pack("<QQQ", seed, epoch, index), digest_size=8,
                             person=b"archdsl-sample").digest()
    return int.from_bytes(digest, "little")


def sample_rng(seed: int, epoch: int, index: int) -> random.Random:
    """The `random.Random` the per-image transforms of that sample draw from."""
    return random.Random(sample_seed(seed, epoch, index))
