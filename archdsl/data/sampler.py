"""Which samples each process reads, epoch after epoch, resumable at any sample: `EpochSampler`.

One global order per epoch, the same on every rank:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
(the generator and seeding of torch's DistributedSampler and, with seed 0, of DeiT's RASampler).
With `repeats` r > 1 every index appears r times in a row (perm[0] x r, perm[1] x r, ...).
The global order is dealt to the ranks like cards: rank k reads positions p+k, p+k+world, ...
so after every rank has read j samples, the first j*world of the global order are consumed.

Resume: `set_position(p)` with p = global samples consumed so far in the epoch (the sum over
ranks). The rest of the global order, from p on, is dealt again over the (possibly new) world
size, so a run that stops after p samples and resumes, on any number of processes, reads
exactly the samples it had not read, in the uninterrupted order.

How many samples an epoch has (`budget`, global; every rank reads the same count):
- repeats=1, drop_last=True: each rank reads (n - p) // world more; the last (n - p) % world of
  the order are left out, like DistributedSampler(drop_last=True) (equal to it when p = 0).
- repeats=1, drop_last=False: each rank reads ceil((n - p) / world); the order is padded by
  continuing from its start, like DistributedSampler(drop_last=False).
- repeats=r > 1: DeiT's RASampler rule: each rank reads floor(n // 256 * 256 / world) samples
  of the repeated order (so an epoch reads about n / r distinct images, each r times, and
  never more than n samples in all). With r=3, seed=0, p=0 this is DeiT's samplers.py exactly.
  Fewer than 256 images leave such an epoch empty: refused (E703).

Yields (index, epoch) tuples; datasets take them so the augmentation seed is per sample.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler

from ..lang.errors import DataError

RA_ROUND = 256  # DeiT: num_selected_samples = floor(n // 256 * 256 / world)


class EpochSampler(Sampler):
    """The sampler of one rank (module docstring): set_epoch(e), then set_position(p) to resume;
    len() is what this rank yields from the current position."""

    def __init__(self, n: int, *, world: int = 1, rank: int = 0, seed: int = 0, repeats: int = 1,
                 drop_last: bool = True, shuffle: bool = True):
        if n <= 0:
            raise DataError("no samples to draw from", code="E703")
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"EpochSampler: rank {rank} is not in a world of {world}")
        if repeats < 1:
            raise ValueError(f"EpochSampler: repeats must be >= 1, not {repeats}")
        if repeats > 1 and n // RA_ROUND * RA_ROUND // world == 0:
            raise DataError(f"repeated augmentation (repeats={repeats}, DeiT's RASampler) reads "
                            f"floor(n // {RA_ROUND} * {RA_ROUND} / world) images per process per "
                            f"epoch: {n} images on {world} process(es) give none",
                            hint="use repeats=1 with fewer than 256 images per process",
                            code="E703")
        self.n, self.world, self.rank, self.seed = n, world, rank, seed
        self.repeats, self.drop_last, self.shuffle = repeats, drop_last, shuffle
        self.epoch, self.position = 0, 0

    def set_epoch(self, epoch: int) -> None:
        """Start `epoch` from its beginning (position 0)."""
        self.epoch, self.position = epoch, 0

    def set_position(self, position: int) -> None:
        """Skip the first `position` samples of the current epoch's global order (the samples
        all ranks together have consumed); call after set_epoch."""
        if position < 0:
            raise ValueError(f"EpochSampler: position {position} < 0")
        self.position = position

    def order(self) -> torch.Tensor:
        """The global order of this epoch (indices, repeated `repeats` times each)."""
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            perm = torch.randperm(self.n, generator=g)
        else:
            perm = torch.arange(self.n)
        return perm.repeat_interleave(self.repeats) if self.repeats > 1 else perm

    def per_rank(self, position: int | None = None) -> int:
        """Samples each rank reads from `position` (default: the current one) to the epoch's end."""
        p = self.position if position is None else position
        if self.repeats > 1:  # DeiT: the epoch ends at world * floor(n // 256 * 256 / world)
            end = self.n // RA_ROUND * RA_ROUND // self.world * self.world
            return max(0, end - p) // self.world
        left = max(0, self.n - p)
        return left // self.world if self.drop_last else -(-left // self.world)

    def __len__(self) -> int:
        return self.per_rank()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = self.order()
        count = self.per_rank()
        start = self.position + self.rank
        stop = start + count * self.world
        if stop > len(order):  # drop_last=False: continue from the start of the order
            order = torch.cat([order, order.repeat(-(-(stop - len(order)) // len(order)))])
        epoch = self.epoch
        return ((int(i), epoch) for i in order[start:stop:self.world].tolist())
