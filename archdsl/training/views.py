"""How a `TrainResult` shows: at a prompt a few lines (the network, the best epoch, the last
epochs), in a notebook the epochs as a table and the curves (loss, accuracy) as inline SVG."""
from __future__ import annotations

import io
from html import escape

from ..lang.views import screen, table, text_table

_COLUMNS = (("epoch", "epoch", "{}"), ("train_loss", "train loss", "{:.4f}"), ("val_loss", "val loss", "{:.4f}"),
            ("val_acc", "val acc", "{:.2%}"), ("images_per_s", "img/s", "{:.0f}"))


def _rows(history: list[dict]) -> list[list[str]]:
    return [[fmt.format(row[key]) if row.get(key) is not None else "" for key, _, fmt in _COLUMNS]
            for row in history]


def _head(result) -> str:
    name = getattr(result.network, "name", None) or "network"
    epochs = len(result.history)
    return (f"{name}: {epochs} epoch{'s' if epochs != 1 else ''}, best val acc {result.best_acc:.2%} "
            f"at epoch {result.best_epoch} ({result.out})")


def result_text(result) -> str:
    lines = [f"TrainResult {_head(result)}"]
    rows = _rows(result.history)
    lines += ["  " + line for line in text_table([h for _, h, _ in _COLUMNS], rows[-8:], (1, 2, 3, 4))]
    lines.append("  (.history, .model, .checkpoint, .best)")
    return screen(lines)


def curves_svg(history: list[dict]) -> str:
    """Loss (train and val) and validation accuracy per epoch, drawn with matplotlib as SVG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(7, 2.6))
    loss, acc = fig.subplots(1, 2)
    for key, label in (("train_loss", "train"), ("val_loss", "val")):
        loss.plot(epochs, [row.get(key) for row in history], marker="o", label=label)
    loss.set_xlabel("epoch")
    loss.set_ylabel("loss")
    loss.legend()
    acc.plot(epochs, [100 * row["val_acc"] for row in history], marker="o", color="tab:green")
    acc.set_xlabel("epoch")
    acc.set_ylabel("val acc %")
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]  # inline: without the XML declaration and doctype


def result_html(result) -> str:
    rows = _rows(result.history)
    return (f"<div><b>{escape(_head(result))}</b>" + table([h for _, h, _ in _COLUMNS], rows, (1, 2, 3, 4))
            + (curves_svg(result.history) if result.history else "") + "</div>")
