"""The roadmap as a table (rich) and the notes under it, shared by `archdsl roadmap` and
`archdsl train-roadmap`."""
from __future__ import annotations

from rich import box
from rich.table import Table
from rich.text import Text


def _signed(n: float, fmt: str) -> str:
    return ("+" if n > 0 else "") + format(n, fmt)


def delta(d: int | None, scale: float, unit: str) -> Text:
    """A signed change in params or MACs: red up, green down, `0` dim, empty where none."""
    if d is None:
        return Text("")
    return Text(_signed(d / scale, ".2f") + unit if d else "0",
                style="red" if d > 0 else "green" if d < 0 else "dim")


def roadmap_table(rows) -> Table:
    """One table of the chain; the rows may carry extra `metrics` columns."""
    metrics = list(dict.fromkeys(k for r in rows for k in r.metrics))
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    table.add_column("step", no_wrap=True)
    table.add_column("change (from the diff)", min_width=24, max_width=64)
    for col in ("params", "Δ params", "GMACs", "Δ GMACs", "paper\nGFLOPs", "paper\ntop-1", "±", *metrics):
        table.add_column(col, justify="right", no_wrap=True)

    for r in rows:
        gflops = "" if r.paper_gflops is None else f"{r.paper_gflops:.2f}" + ("*" if r.flops_differ else "")
        table.add_row(
            Text(("  " * (r.level - 1) + "└ " if r.branch else "") + r.step,
                 style="dim" if r.branch else "italic" if r.reference else "bold"),
            r.change,
            f"{r.params / 1e6:.2f}M", delta(r.d_params, 1e6, "M"), f"{r.gmacs:.2f}", delta(r.d_macs, 1e9, ""),
            Text(gflops, style="yellow" if r.flops_differ else ""),
            "" if r.paper_top1 is None else f"{r.paper_top1:.2f}",
            Text(f"{r.paper_top1_std:.2f}" if r.paper_top1_std else "", style="dim"),
            *(f"{r.metrics[m]:.2f}" if m in r.metrics else "" for m in metrics))
    return table


def notes(rows) -> list[str]:
    """A line for each row whose paper GFLOPs differ from our GMACs, saying why."""
    return [f"* {r.step}: paper {r.paper_gflops:.2f} GFLOPs vs {r.gmacs:.2f} GMACs: "
            f"{r.paper_note or 'the paper counts FLOPs with fvcore'}" for r in rows if r.flops_differ]


def roadmap_tree(rows, title: str = "roadmap"):
    """The rows as a tree (rich): the main line as one column, each branch under the step it
    extends; a node is its step, its change in one line and its cost."""
    from rich.tree import Tree

    def label(r) -> Text:
        cost = f"{r.params / 1e6:.2f}M params, {r.gmacs:.2f} GMACs"
        if r.d_params is not None:
            cost += f" ({_signed(r.d_params / 1e6, '.2f')}M, {_signed(r.d_macs / 1e9, '.2f')})"
        text = Text(r.step, style="dim bold" if r.branch else "bold")
        text.append(f"  {r.change}")
        text.append(f"  [{cost}]", style="dim")
        return text

    root = Tree(Text(title, style="bold"), guide_style="dim")
    node: dict[str, Tree] = {}
    line: dict[str, Tree] = {}  # where a step's continuation goes: the list its own line is in
    levels = {r.step: r.level for r in rows}
    for r in rows:
        if r.parent not in node:
            holder = root
        elif r.level == levels[r.parent]:
            holder = line[r.parent]     # the same line goes on
        else:
            holder = node[r.parent]     # a branch starts at its parent
        node[r.step] = holder.add(label(r))
        line[r.step] = holder
    return root
