"""Ablations of a chain of steps: what each change is worth on its own and what the end of the
chain loses without it.

    ab = ablate("specs/roadmap", mode="leave-one-out")   # ConvNeXt-T without step k, for every k
    ab = ablate(mode="one-at-a-time")                     # each change alone on ResNet-50

The chain is the roadmap's main line (side branches are left out). Each step's change is a
`Patch` (`archdsl.change`), the edits it makes to the step it extends. Leave-one-out replays
the chain from its root with one change dropped: where a later change no longer fits (step
07 moves the dwconv that step 04 introduced), that edit is skipped and reported as depending
on the dropped step. One-at-a-time applies each change alone to the root. Every variant is
checked and counted at the specs' input size; one that does not check is reported, not hidden.
"""
from __future__ import annotations

import re

from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from ..api import analyze
from ..diff.change import change
from ..lang.errors import ArchError, ResolveError
from ..lang.network import Network
from ..lang.patch import Patch, apply_patch

Mode = Literal["leave-one-out", "one-at-a-time"]
MODES = ("leave-one-out", "one-at-a-time")


class AblationRow(BaseModel):
    variant: str                   # the network's name, e.g. without_step04_depthwise
    step: str                      # the step left out (leave-one-out) or applied alone
    change: str                    # that step's change in one line
    edits: int = 0                 # how many edits that change makes
    params: int | None = None      # None when the variant does not check
    macs: int | None = None
    d_params: int | None = None    # against the reference
    d_macs: int | None = None
    depends: list[str] = []        # leave-one-out: later edits that needed this step; one-at-a-time: edits that did not fit
    error: str | None = None       # why the variant does not check
    path: str | None = None        # the variant's spec, when written

    @property
    def builds(self) -> bool:
        return self.error is None


class Ablation(BaseModel):
    """`archdsl ablate --json`."""

    mode: str
    dir: str
    root: str                      # where the chain starts
    reference: str                 # what Δ is against: the end of the chain, or the root
    reference_params: int
    reference_macs: int
    rows: list[AblationRow]


def main_line(directory: str | Path | None = None) -> list[Network]:
    """The chain's main line, root first, as resolved networks."""
    from .chain import DEFAULT_DIR, _specs, order

    directory = Path(directory) if directory else DEFAULT_DIR
    if not directory.is_dir():
        raise ResolveError(f"no roadmap directory `{directory}`", code="E201",
                           hint=f"the shipped roadmap is {DEFAULT_DIR}")
    specs = _specs(directory, {})
    parents = {name: (c.net.chain[0] if c.net.chain else None) for name, c in specs.items()}
    names = [n for n, branch in order(parents) if not branch]
    roots = [n for n in names if parents[n] not in specs]
    if len(roots) != 1:
        raise ResolveError(f"`{directory}` holds {len(roots)} chains; an ablation needs one",
                           hint="the chains start at " + ", ".join(roots), code="E207")
    return [specs[n].net for n in names]


def _measure(row: AblationRow, net: Network) -> None:
    try:
        report = analyze(net)
    except ArchError as e:
        first = e.errors[0]
        row.error = f"{first.code}: {first.message}"  # the first; `archdsl check` on the spec shows all
        return
    row.params, row.macs = report.params, report.macs


def _replay(root: Network, patches: list[Patch], name: str) -> tuple[Network, list[str]]:
    net, notes = root.model_copy(update={"name": name}), []
    for p in patches:
        net, conflicts = apply_patch(p, net, strict=False)
        notes += [f"{p.step}: {c.message.split(': ', 1)[-1]}" for c in conflicts]  # the message less its head
    return net, notes


def short_step(name: str) -> str:
    """`step05` for `step05_widen`; a step not named `stepNN_...` (a user's own chain) whole."""
    m = re.match(r"step\d+", name)
    return m.group() if m else name


def _short(p: Patch, most: int = 2) -> str:
    parts = [e.describe() for e in p.edits]
    return "; ".join(parts[:most]) + (f"; +{len(parts) - most} more" if len(parts) > most else "")


def variants(directory: str | Path | None = None, mode: Mode = "leave-one-out"):
    """(root, reference network, [(row, network)]) for each step of the main line."""
    chain = main_line(directory)
    root = chain[0]
    patches = [change(net, prev) for prev, net in zip(chain, chain[1:])]
    out = []
    for k, p in enumerate(patches):
        if mode == "leave-one-out":
            name = f"without_{p.step}"
            net, notes = _replay(root, patches[:k] + patches[k + 1:], name)
        else:
            name = f"only_{p.step}"
            net, notes = _replay(root, [p], name)
        out.append((AblationRow(variant=name, step=p.step, change=_short(p), edits=len(p.edits), depends=notes), net))
    reference = chain[-1] if mode == "leave-one-out" else root
    return root, reference, out


def ablate(directory: str | Path | None = None, mode: Mode = "leave-one-out",
           out: str | Path | None = None) -> Ablation:
    """The ablation table; with `out`, each variant's spec is written there (by the printer)."""
    from .chain import DEFAULT_DIR

    if mode not in MODES:
        raise ValueError(f"mode is one of {MODES}")
    root, reference, items = variants(directory, mode)
    ref = analyze(reference)
    for row, net in items:
        _measure(row, net)
        if row.builds:
            row.d_params, row.d_macs = row.params - ref.params, row.macs - ref.macs
    if out is not None:
        write_variants(root, reference, items, Path(out), mode)
    return Ablation(mode=mode, dir=str(directory or DEFAULT_DIR), root=root.name, reference=reference.name,
                    reference_params=ref.params, reference_macs=ref.macs, rows=[row for row, _ in items])


def write_variants(root: Network, reference: Network, items, out: Path, mode: str) -> list[Path]:
    """Each variant that checks as `OUT/<variant>.arch` (extending the root where `extends`
    finds it from OUT, else self-contained), plus the reference, so `archdsl train-roadmap OUT`
    trains them all."""
    from ..lang.flatten import flatten
    from ..lang.patch import child_spec
    from ..lang.printer import format_spec
    from ..lang.specpath import find_spec

    out.mkdir(parents=True, exist_ok=True)
    try:
        find_spec(root.name, out)
        findable = True
    except ArchError:
        findable = False
    written = []
    ref_name = "full_chain" if mode == "leave-one-out" else "baseline"
    refs = [(ref_name, reference, f"the reference: {reference.name}", None)]
    for row, net in items:
        if row.builds:
            what = f"{root.name}'s chain without {row.step}" if mode == "leave-one-out" else \
                f"{row.step}'s change alone on {root.name}"
            refs.append((row.variant, net, f"{what} (`archdsl ablate --mode {mode}`)", row))
    for name, net, note, row in refs:
        net = net.model_copy(update={"name": name})
        comments = (note,) + tuple(f"skipped: {d}" for d in (row.depends if row else ()))
        spec = child_spec(net, root, name, comments) if findable else \
            flatten(net, name).model_copy(update={"comments": child_spec(net, root, name, comments).comments})
        path = out / f"{name}.arch"
        path.write_text(format_spec(spec, layout=False))
        written.append(path)
        if row is not None:
            row.path = str(path)
    return written


def ablation_table(ab: Ablation):
    """The table `archdsl ablate` prints (rich)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from .render import delta

    table = Table(header_style="bold", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    first = "without" if ab.mode == "leave-one-out" else "only"
    for col, justify in ((first, "left"), ("its change", "left"), ("params", "right"), ("Δ params", "right"),
                         ("GMACs", "right"), ("Δ GMACs", "right"), ("notes", "left")):
        table.add_column(col, justify=justify, no_wrap=col in (first, "params", "GMACs"),
                         max_width=48 if col in ("its change", "notes") else None)
    table.add_row(Text(ab.reference, style="bold"), "(the reference)", f"{ab.reference_params / 1e6:.2f}M", "",
                  f"{ab.reference_macs / 1e9:.2f}", "", "")

    for r in ab.rows:
        notes = [f"does not check ({r.error})"] if r.error else []
        if r.depends and ab.mode == "leave-one-out":
            steps = dict.fromkeys(short_step(d.split(":")[0]) for d in r.depends)
            notes.append(f"needed by {', '.join(steps)} ({len(r.depends)} edits skipped)")
        elif r.depends:
            notes.append(f"{len(r.depends)} of {r.edits} edits did not fit")
        if r.builds:
            cells = [f"{r.params / 1e6:.2f}M", delta(r.d_params, 1e6, "M"), f"{r.macs / 1e9:.2f}",
                     delta(r.d_macs, 1e9, "")]
        else:
            cells = [Text("-", style="dim")] * 4
        table.add_row(r.step, r.change, *cells, "\n".join(notes))
    return table
