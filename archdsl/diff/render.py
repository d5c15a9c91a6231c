"""How a `DiffModel` reads: the full listing `archdsl diff` prints (rich: coloured in a
terminal, plain when piped) and the one-line summary `archdsl roadmap` shows."""
from __future__ import annotations

import io
import os

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .model import SECTIONS, Change, Cost, DiffModel

_MARK = {"added": ("+", "green"), "removed": ("-", "red"), "changed": ("~", "yellow"),
         "moved": (">", "cyan"), "renamed": ("~", "yellow")}
_HEAD_OPS = ("conv", "dwconv", "pwconv", "linear", "maxpool", "avgpool", "gap", "flatten", "residual",
             "wattn", "mhsa", "merge", "clspool")
_HTML_COLOURS = {"green": "#080", "red": "#c00", "yellow": "#b8860b", "cyan": "#08a"}  # readable on white
_TRAIN_FIRST = ("optimizer", "epochs", "schedule", "lr", "batch")


def _rel(path: str) -> str:
    try:
        rel = os.path.relpath(path)
        return rel if not rel.startswith("..") else path
    except ValueError:
        return path


def _signed(n: float, fmt: str) -> str:
    return ("+" if n > 0 else "") + format(n, fmt)


def cost_table(before: Cost, after: Cost) -> Table:
    table = Table(show_edge=False, header_style="bold", box=None, padding=(0, 2))
    for col in ("cost", "before", "after", "delta"):
        table.add_column(col, justify="left" if col == "cost" else "right")
    for label, a, b, fmt in (("params", before.params, after.params, ","),
                             ("MACs", before.macs / 1e9, after.macs / 1e9, ".3f"),
                             ("peak activation", before.peak_activation, after.peak_activation, ",")):
        delta = b - a
        pct = 100 * delta / a if a else 0
        pct = f" ({_signed(pct, '.1f' if abs(pct) >= 0.1 else '.2g')}%)" if a else ""
        unit = " G" if label == "MACs" else ""
        style = "red" if delta > 0 else "green" if delta < 0 else ""
        table.add_row(label, f"{format(a, fmt)}{unit}", f"{format(b, fmt)}{unit}",
                      Text(f"{_signed(delta, fmt)}{unit}{pct}" if delta else "0", style=style))
    return table


def renderable(d: DiffModel) -> Group:
    title = Text.assemble((d.before.name, "bold"), " -> ", (d.after.name, "bold"),
                          (f"   ({_rel(d.before.path)} -> {_rel(d.after.path)})", "dim"))
    parts: list = [title, Text("")]
    if not d.changes:
        parts.append(Text("no difference: both resolve to the same network", style="green"))
    for section in SECTIONS:
        changes = d.section(section)
        if not changes:
            continue
        parts.append(Text(section, style="bold underline"))
        lines = Table.grid(padding=(0, 1), pad_edge=True)  # a long line wraps under its text, not its mark
        lines.add_column(no_wrap=True)
        lines.add_column()
        for c in changes:
            mark, style = _MARK[c.kind]
            lines.add_row(Text(" " + mark, style=style), c.text())
        parts.append(lines)
    parts += [Text(""), cost_table(d.cost_before, d.cost_after)]
    return Group(*parts)


def plain(d: DiffModel, width: int = 120) -> str:
    """The listing as plain text (no colour), `width` columns wide."""
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, highlight=False, markup=False, emoji=False).print(renderable(d))
    return "\n".join(line.rstrip() for line in buf.getvalue().rstrip().splitlines()) + "\n"


def _bare(text: str | None) -> str:
    return (text or "").replace("`", "")


def phrase(c: Change) -> tuple[float, str, str]:
    """A change as a few words, with a weight (structure first, norms and activations next,
    renames, taps, init and recipe last) and the part it names (`stem `, `shortcut `, or '' for a
    block's branch), so added or removed ops of one part can share a phrase."""
    part = f"{c.section} " if c.section in ("stem", "head", "downsample") else \
        "shortcut " if c.where.endswith("shortcut") else ""
    if c.section in ("stages", "input", "classes"):
        return 4, "", f"{c.what} {c.before} -> {c.after}"
    if c.section in ("init", "taps"):
        return 1, "", f"{c.section} {c.before} -> {c.after}"
    if c.kind == "renamed":
        return 0.5, "", f"block {c.before} -> {c.after}"
    if c.what == "downsample" and c.where == "between stages":
        return 5, "", f"downsample {c.after or c.before} {c.kind}"
    if c.what == "residual" and c.kind == "changed":  # one residual against two: say how many
        return 5, "", c.details[0].split(";")[0] + " per block"
    weight = 4 if c.what in _HEAD_OPS else 2
    if c.kind == "changed":  # a norm or activation swapped reads the same wherever it sits
        part = part if c.what in _HEAD_OPS else ""
        return weight, part, f"{part}{c.before} -> {c.after}"
    if c.kind == "moved":
        return weight, part, f"{part}{_bare(c.after).split(', ')[0]} moved {_bare(c.position)}"
    return weight, part, _bare(c.after if c.kind == "added" else c.before)


def _train_phrase(changes: list[Change]) -> str:
    ordered = sorted(changes, key=lambda c: _TRAIN_FIRST.index(c.what) if c.what in _TRAIN_FIRST else 99)
    shown = ", ".join(f"{c.what} {c.before} -> {c.after}" for c in ordered[:2])
    more = len(ordered) - 2
    return "recipe: " + shown + (f", +{more} more" if more > 0 else "")


def phrases(d: DiffModel) -> list[str]:
    """Every change as a phrase, weightiest first: repeats counted (`relu -> gelu x3`), ops
    added to or removed from one part listed together (`stem relu, maxpool3 s2 removed`)."""
    merged: dict[tuple, list] = {}  # key -> [weight, first index, {text: count}]
    for k, c in enumerate(d.changes):
        if c.section == "train":
            continue
        weight, part, text = phrase(c)
        listed = c.kind in ("added", "removed") and c.section != "stages" and c.what != "downsample"
        key = (part, c.kind) if listed else (text,)
        entry = merged.setdefault(key, [weight, k, {}])
        entry[0] = max(entry[0], weight)
        entry[2][text] = entry[2].get(text, 0) + 1
    out = []
    for key, (weight, k, texts) in merged.items():
        body = ", ".join(t + (f" x{n}" if n > 1 else "") for t, n in texts.items())
        out.append((-weight, k, f"{key[0]}{body} {key[1]}" if len(key) == 2 else body))
    train = [c for c in d.changes if c.section == "train"]
    if train:
        out.append((-1, len(d.changes), _train_phrase(train)))
    return [text for _, _, text in sorted(out)]


def summary(d: DiffModel, limit: int | None = None) -> str:
    """One line; with `limit`, that many phrases and a count of the rest."""
    if not d.changes:
        return "no change"
    ps = phrases(d)
    if limit is not None and len(ps) > limit:
        return "; ".join(ps[:limit]) + f" (+{len(ps) - limit} more)"
    return "; ".join(ps)


def html(d: DiffModel) -> str:
    """The listing for a notebook: each section's changes with their marks, then the costs
    before and after with their deltas."""
    from html import escape

    from ..lang.views import table

    out = [f"<div><b>{escape(d.before.name)}</b> -> <b>{escape(d.after.name)}</b>"]
    if not d.changes:
        out.append("<div style='color:green'>no difference: both resolve to the same network</div>")
    for section in SECTIONS:
        changes = d.section(section)
        if changes:
            items = "".join(f"<li><code style='color:{_HTML_COLOURS[_MARK[c.kind][1]]}'>{_MARK[c.kind][0]}</code> "
                            f"{escape(c.text())}</li>" for c in changes)
            out.append(f"<div><u>{section}</u><ul style='margin:2px 0;list-style:none'>{items}</ul></div>")
    rows = []
    for label, a, b, fmt, unit in (("params", d.cost_before.params, d.cost_after.params, ",", ""),
                                   ("MACs", d.cost_before.macs / 1e9, d.cost_after.macs / 1e9, ".3f", " G"),
                                   ("peak activation", d.cost_before.peak_activation, d.cost_after.peak_activation,
                                    ",", "")):
        pct = f" ({_signed(100 * (b - a) / a, '.1f')}%)" if a and b != a else ""
        rows.append([label, f"{format(a, fmt)}{unit}", f"{format(b, fmt)}{unit}",
                     f"{_signed(b - a, fmt)}{unit}{pct}" if b != a else "0"])
    out.append(table(["cost", "before", "after", "delta"], rows, (1, 2, 3)) + "</div>")
    return "".join(out)
