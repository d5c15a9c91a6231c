"""`archdsl diff A B` and `archdsl roadmap [DIR]`: registered on the main app by `register`."""
# No `from __future__ import annotations`: typer reads the real annotations of the commands below,
# which use names imported inside `register`.

import io
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .lang.errors import ArchError

DirArg = Annotated[Optional[Path], typer.Argument(help="A directory of step specs (default: the shipped "
                                                  "specs/roadmap).", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (its schema: `archdsl.diff_model`, "
                                       "`archdsl.roadmap.Roadmap`) instead of text.")]


def _signed(n: float, fmt: str) -> str:
    return ("+" if n > 0 else "") + format(n, fmt)


def roadmap_table(rows) -> Table:
    """One table of the chain; the rows may carry extra `metrics` columns."""
    metrics = list(dict.fromkeys(k for r in rows for k in r.metrics))
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    table.add_column("step", no_wrap=True)
    table.add_column("change (from the diff)", min_width=24, max_width=64)
    for col in ("params", "Δ params", "GMACs", "Δ GMACs", "paper\nGFLOPs", "paper\ntop-1", "±", *metrics):
        table.add_column(col, justify="right", no_wrap=True)

    def delta(d: int | None, scale: float, unit: str) -> Text:
        if d is None:
            return Text("")
        return Text(_signed(d / scale, ".2f") + unit if d else "0",
                    style="red" if d > 0 else "green" if d < 0 else "dim")

    for r in rows:
        gflops = "" if r.paper_gflops is None else f"{r.paper_gflops:.2f}" + ("*" if r.flops_differ else "")
        table.add_row(
            Text(("└ " if r.branch else "") + r.step, style="dim" if r.branch else "bold"), r.change,
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


def register(app: typer.Typer) -> None:
    from .cli import SetOpt, SpecArg, err, fail, out, overrides

    @app.command("diff")
    def diff_cmd(a: SpecArg, b: SpecArg, json_: JsonOpt = False, set_: SetOpt = None) -> None:
        """What changed from spec A to spec B, section by section, and what it costs.

        Compares the resolved networks, never their text: `archdsl diff step05 step06`."""
        from .diff import diff

        try:
            d = diff(a, b, **overrides(set_))
        except ArchError as e:
            fail(e)
        if json_:
            print(d.to_json())
        else:
            if out.is_terminal:
                out.print(d)
            else:
                sys.stdout.write(str(d))  # piped: plain text

    @app.command("roadmap")
    def roadmap_cmd(
        directory: DirArg = None,
        json_: JsonOpt = False,
        plot: Annotated[Optional[Path], typer.Option("--plot", help="Also draw the roadmap (Figure 2 style) "
                                                     "into this PNG file.", dir_okay=False)] = None,
        set_: SetOpt = None,
    ) -> None:
        """The roadmap in one table: each step's change, its cost and the paper's numbers.

        The change is derived from the diff against the step each spec extends; kernel-size
        variants are side branches of the step they extend."""
        from .roadmap import roadmap

        if plot is not None and plot.suffix.lower() != ".png":
            err.print(f"error: --plot writes a PNG; name the file `{plot.with_suffix('.png')}`")
            raise typer.Exit(2)
        try:
            rm = roadmap(directory, **overrides(set_))
        except ArchError as e:
            fail(e)
        if plot is not None:
            from .roadmap_plot import plot_roadmap

            try:
                plot_roadmap(rm.rows, plot)
            except OSError as e:
                err.print(f"error: cannot write `{plot}`: {e.strerror or e}")
                raise typer.Exit(1) from None
        if json_:
            print(rm.model_dump_json(indent=2))
            return
        parts = [roadmap_table(rm.rows), *(Text(line, style="yellow") for line in notes(rm.rows))]
        if out.is_terminal:
            out.print(*parts, sep="\n")
        else:  # piped: plain, wide enough not to wrap
            buf = io.StringIO()
            Console(file=buf, width=200, color_system=None, highlight=False).print(*parts, sep="\n")
            sys.stdout.write("".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines()))
        if plot is not None:
            out.print(f"wrote {plot}")
