"""The roadmap: a directory of step specs read as one chain, a row per step.

    rows = roadmap_rows()                 # specs/roadmap, in chain order
    rows[2].change                        # "depths 3,4,6,3 -> 3,3,9,3", from the diff
    rows[2].metrics["digits top-1"] = 97.1  # whoever measures more adds columns

The chain is found from the specs' `extends`, not from their file names: any directory of
specs that extend one another is a tree. The main line is the longest path of steps from the
root; other steps (the kernel-size variants of step 08, a user's `my_step09_on_step04.arch`
written by `archdsl apply`) are branches, listed after the step they extend, with their level. Each row is compared with the step it
extends: the change in one line, and the deltas in params and MACs.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from ..diff import Checked, compare_checked
from ..diff.render import summary
from ..lang.errors import ArchError, ErrorCollector, ResolveError
from .paper import SWIN_T, paper_row
from ..lang.specpath import SHIPPED, find_spec, natural

DEFAULT_DIR = SHIPPED / "roadmap"
SUMMARY_PHRASES = 4


class RoadmapRow(BaseModel):
    step: str                          # the spec's name
    path: str
    parent: str | None                 # the spec it extends
    branch: bool = False               # a side branch, not on the main line
    level: int = 0                     # 0 the main line, 1 a branch off it, 2 a branch off a branch...
    change: str                        # one line, from the diff against `parent`
    params: int
    macs: int
    peak_activation: int
    d_params: int | None = None        # against `parent`
    d_macs: int | None = None
    paper_row: str | None = None       # Table 10's row, e.g. "08-k5"
    paper_change: str | None = None
    paper_label: str | None = None     # its label in the paper's Figure 2
    paper_group: str | None = None
    paper_gflops: float | None = None
    paper_top1: float | None = None
    paper_top1_std: float | None = None
    paper_note: str | None = None      # why the paper's FLOPs differ from the MACs
    metrics: dict[str, float] = {}     # more columns, e.g. a measured accuracy
    reference: bool = False            # not a step: the network the paper compares against (Swin-T)

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def flops_differ(self) -> bool:
        """The paper's GFLOPs and our GMACs disagree by more than rounding."""
        return self.paper_gflops is not None and abs(round(self.gmacs, 2) - self.paper_gflops) > 0.01


class Roadmap(BaseModel):
    """`archdsl roadmap --json`."""

    dir: str
    rows: list[RoadmapRow]

    def __repr__(self) -> str:
        from ..lang.views import roadmap_text
        return roadmap_text(self)

    def _repr_html_(self) -> str:
        from ..lang.views import roadmap_html
        return roadmap_html(self)


def _specs(directory: Path, overrides: dict) -> dict[str, Checked]:
    files = sorted(directory.glob("*.arch"), key=lambda p: natural(p.stem))
    if not files:
        raise ResolveError(f"no .arch specs in `{directory}`", code="E201",
                           hint="give a directory of step specs, e.g. specs/roadmap")
    errors, out = ErrorCollector(), {}
    for f in files:
        try:
            c = Checked(f, **overrides)
            out[c.net.name] = c
        except ArchError as e:
            errors.add(e)
    errors.raise_if_any()
    return out


def tree(parents: dict[str, str | None]) -> list[tuple[str, int]]:
    """Steps in chain order as (name, level): level 0 is the main line (the longest path from
    each root), 1 a branch off it, 2 a branch off a branch, and so on. Each step is followed
    by the branches that start at it, then by the step that continues its own line."""
    children: dict[str | None, list[str]] = {}
    for name, parent in parents.items():
        children.setdefault(parent if parent in parents else None, []).append(name)

    def depth(name: str) -> int:
        return 1 + max((depth(c) for c in children.get(name, [])), default=0)

    out: list[tuple[str, int]] = []

    def walk(name: str, level: int) -> None:
        out.append((name, level))
        kids = sorted(children.get(name, []), key=natural)
        if not kids:
            return
        main = max(kids, key=depth)  # the first of the deepest
        for k in kids:
            if k != main:
                walk(k, level + 1)
        walk(main, level)

    for root in sorted(children.get(None, []), key=natural):
        walk(root, 0)
    return out


def order(parents: dict[str, str | None]) -> list[tuple[str, bool]]:
    """Steps in chain order as (name, is_branch): `tree` without the levels."""
    return [(name, level > 0) for name, level in tree(parents)]


def reference_row(last: Checked, overrides: dict) -> RoadmapRow:
    """Swin-T, the paper's point of comparison, computed from `specs/swin_t.arch` and
    compared with the last step of the chain (ConvNeXt-T)."""
    swin = Checked("swin_t", **overrides)
    d = compare_checked(last, swin)
    return RoadmapRow(
        step=swin.net.name, path=swin.net.path, parent=None, reference=True,
        change=f"reference: vs {last.net.name}, {summary(d, SUMMARY_PHRASES)}",
        params=swin.cost.params, macs=swin.cost.macs, peak_activation=swin.cost.peak_activation,
        d_params=swin.cost.params - last.cost.params, d_macs=swin.cost.macs - last.cost.macs,
        paper_change="Swin-T (Liu et al., 2021)", paper_label="Swin-T", paper_group="reference",
        paper_gflops=SWIN_T["gflops"], paper_top1=SWIN_T["top1"], paper_note=SWIN_T["note"])


def roadmap_rows(directory: str | Path | None = None, **overrides) -> list[RoadmapRow]:
    """A row per step spec in `directory` (the shipped roadmap by default), in chain order.
    The shipped roadmap ends with Swin-T as a reference row (`reference=True`)."""
    shipped = not directory
    directory = Path(directory) if directory else DEFAULT_DIR
    if not directory.is_dir():
        raise ResolveError(f"no roadmap directory `{directory}`", code="E201",
                           hint=f"the shipped roadmap is {DEFAULT_DIR}")
    specs = _specs(directory, overrides)
    parents = {name: (c.net.chain[0] if c.net.chain else None) for name, c in specs.items()}
    rows = []
    for name, level in tree(parents):
        c, parent, branch = specs[name], parents[name], level > 0
        before = specs.get(parent) if parent else None
        if parent and before is None:  # the root's own parent lives outside the directory
            before = Checked(find_spec(parent, Path(c.net.path).parent), **overrides)
        d = compare_checked(before, c) if before else None
        change = (summary(d, SUMMARY_PHRASES) if d.changes else f"= {parent}") if d else "start"
        p = paper_row(name)
        rows.append(RoadmapRow(
            step=name, path=c.net.path, parent=parent, branch=branch, level=level, change=change,
            params=c.cost.params, macs=c.cost.macs, peak_activation=c.cost.peak_activation,
            d_params=c.cost.params - before.cost.params if before else None,
            d_macs=c.cost.macs - before.cost.macs if before else None,
            paper_row=p.row if p else None, paper_change=p.change if p else None,
            paper_label=p.label if p else None,
            paper_group=p.group if p else None, paper_gflops=p.gflops if p else None,
            paper_top1=p.top1 if p else None, paper_top1_std=p.top1_std if p else None,
            paper_note=p.note if p else None))
    if shipped:
        last = next(r.step for r in reversed(rows) if not r.branch)
        rows.append(reference_row(specs[last], overrides))
    return rows


def roadmap(directory: str | Path | None = None, **overrides) -> Roadmap:
    return Roadmap(dir=str(Path(directory) if directory else DEFAULT_DIR), rows=roadmap_rows(directory, **overrides))
