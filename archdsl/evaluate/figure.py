"""The confusion matrix as a PNG: rows the true class, columns the predicted one, each row
coloured by its share of the class's images (so a small class reads as clearly as a large one),
the counts written in the cells when there are at most 20 classes and the class names on the
axes when there are at most 40. Drawn with matplotlib's Agg backend (no display), written
atomically (a temporary beside the file, then a rename)."""
from __future__ import annotations

from pathlib import Path

from ..training.checkpoint import atomic_write


def confusion_png(path: Path, confusion: list[list[int]], class_names: list[str], title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    c = np.asarray(confusion, dtype=np.int64)
    k = len(c)
    rows = c.sum(1, keepdims=True)
    share = np.divide(c, rows, out=np.zeros(c.shape, dtype=float), where=rows > 0)
    side = min(12.0, max(4.0, 0.45 * k + 2))
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if c[i, j]:
                    ax.text(j, i, str(c[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if share[i, j] > 0.5 else "black")
    if k <= 40:
        ax.set_xticks(range(k), [_short(n) for n in class_names], rotation=90, fontsize=7)
        ax.set_yticks(range(k), [_short(n) for n in class_names], fontsize=7)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    fig.tight_layout()
    try:
        atomic_write(Path(path), lambda f: fig.savefig(f, format="png", dpi=100))
    finally:
        plt.close(fig)
    return Path(path)


def _short(name: str, limit: int = 16) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
