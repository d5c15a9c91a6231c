"""Top-1, top-5, per-class accuracy and the confusion matrix, accumulated batch by batch.

    tally = Tally(classes=10)
    for logits, y in batches: tally.add(logits, y)   # logits (B, K), y (B,)
    tally.confusion            # (K, K) int64: row = true class, column = predicted (top-1)

Top-1 correct is the confusion matrix's diagonal; top-k counts an image whose true class is
among its k largest logits (k = min(5, K)); per-class accuracy is a row's diagonal over the
row's sum (None for a class the split has no image of). Ties in top-1 go to the lower index
(torch.argmax), in top-k to torch.topk's order.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch


class Tally:
    def __init__(self, classes: int, k: int = 5):
        self.classes, self.k = classes, min(k, classes)
        self.confusion = torch.zeros(classes, classes, dtype=torch.int64)
        self.topk_correct = 0

    @torch.no_grad()
    def add(self, logits: torch.Tensor, y: torch.Tensor) -> None:
        logits, y = logits.detach().float().cpu(), y.cpu().long()
        pred = logits.argmax(1)
        self.confusion += torch.bincount(y * self.classes + pred,
                                         minlength=self.classes ** 2).view(self.classes, self.classes)
        top = logits.topk(self.k, dim=1).indices
        self.topk_correct += int((top == y[:, None]).any(1).sum())

    @property
    def images(self) -> int:
        return int(self.confusion.sum())


@dataclass
class Scores:
    """What `archdsl eval` reports (`--json` prints `to_json()`)."""

    network: str
    weights: str
    layout: str
    data: str
    split: str
    images: int
    top1: float
    top5: float
    top5_k: int                       # k of "top-5": min(5, classes)
    class_names: list[str]
    per_class: list[float | None]     # accuracy per class, in label order
    per_class_images: list[int]
    confusion: list[list[int]]        # [true][predicted]
    bad_images: int
    bad: list[tuple[str, str]]        # (path, why) of each skipped image
    seconds: float
    images_per_s: float
    input: list[int]
    crop_pct: float
    interpolation: str
    mean: list[float]
    std: list[float]
    figure: str | None = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, tally: Tally, **info) -> "Scores":
        c = tally.confusion
        n = tally.images
        rows = c.sum(1)
        per = [(int(c[i, i]) / int(rows[i])) if rows[i] else None for i in range(tally.classes)]
        return cls(images=n, top1=int(c.diag().sum()) / n if n else 0.0,
                   top5=tally.topk_correct / n if n else 0.0, top5_k=tally.k, per_class=per,
                   per_class_images=[int(r) for r in rows], confusion=c.tolist(), **info)

    def to_json(self) -> dict:
        out = asdict(self)
        out["bad"] = [list(b) for b in self.bad]
        return out
