"""Samples to a batch: `collate(samples) -> Batch(x, y, bad)`.

Runs in the DataLoader workers (pass `collate_fn=collate`). Bad samples (`BadSample`, a file
that could not be decoded) are not in `x`/`y`; they travel in `bad` as (path, message) so the
training loop decides: skip and count them, or stop naming the file. A batch whose samples
were all bad has B = 0 (`x` of shape (0,)).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch.utils.data import get_worker_info


class BadSample(NamedTuple):
    """A sample whose file could not be decoded: where, and why (one line)."""

    path: str
    message: str


class Batch(NamedTuple):
    x: torch.Tensor  # uint8 (B, C, H, W)
    y: torch.Tensor  # int64 (B,)
    bad: list[tuple[str, str]]

    def pin_memory(self) -> "Batch":  # DataLoader(pin_memory=True) calls this on custom types
        return Batch(self.x.pin_memory(), self.y.pin_memory(), self.bad)


def collate(samples: Sequence[tuple[torch.Tensor, int] | BadSample]) -> Batch:
    good = [s for s in samples if not isinstance(s, BadSample)]
    bad = [(s.path, s.message) for s in samples if isinstance(s, BadSample)]
    if not good:
        return Batch(torch.empty(0, dtype=torch.uint8), torch.empty(0, dtype=torch.long), bad)
    shapes = {tuple(x.shape) for x, _ in good}
    if len(shapes) > 1:
        raise ValueError(f"collate: images of different shapes in one batch: {sorted(shapes)} "
                         "(the transform must bring every image to the network's input size)")
    out = torch.empty((len(good), *shapes.pop()), dtype=good[0][0].dtype)
    if get_worker_info() is not None:  # in a DataLoader worker: stack straight into shared
        out.share_memory_()            # memory (as default_collate does), not into a copy the
    torch.stack([x for x, _ in good], out=out)  # worker queue would then copy once more
    return Batch(out, torch.tensor([int(y) for _, y in good]), bad)
