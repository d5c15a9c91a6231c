"""`archdsl diff A B` and `archdsl roadmap [DIR]`: registered on the main app by `register`."""
# No `from __future__ import annotations`: typer reads the real annotations of the commands below.

import io
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.text import Text

from ..lang.errors import ArchError
from .common import SetOpt, SpecArg, fail, out, overrides, plain_console, say, usage, visible

DirArg = Annotated[Optional[Path], typer.Argument(help="A directory of step specs (default: the shipped "
                                                  "specs/roadmap).", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (its schema: `archdsl.diff.model`, "
                                       "`archdsl.roadmap.Roadmap`) instead of text.")]


def register(app: typer.Typer) -> None:
    @app.command("diff")
    def diff_cmd(a: SpecArg, b: SpecArg, json_: JsonOpt = False, set_: SetOpt = None,
                 exit_code: Annotated[bool, typer.Option("--exit-code", help="Exit 1 when the networks differ, "
                                                         "0 when they are the same (as `git diff --exit-code`); "
                                                         "an error in either spec also exits 1.")] = False) -> None:
        """What changed from spec A to spec B, section by section, and what it costs.

        Compares the resolved networks, never their text: `archdsl diff step05 step06`."""
        from ..diff import diff

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
                sys.stdout.write(visible(str(d)))  # piped: plain text, as str() gives it
        if exit_code and d:
            raise typer.Exit(1)

    @app.command("roadmap")
    def roadmap_cmd(
        directory: DirArg = None,
        json_: JsonOpt = False,
        plot: Annotated[Optional[Path], typer.Option("--plot", help="Also draw the roadmap (Figure 2 style) "
                                                     "into this PNG file.", dir_okay=False)] = None,
        set_: SetOpt = None,
        tree: Annotated[bool, typer.Option("--tree", help="Show the specs as a tree (each step under the one "
                                           "it extends) instead of the table.")] = False,
    ) -> None:
        """The roadmap in one table: each step's change, its cost and the paper's numbers.

        The change is derived from the diff against the step each spec extends. Any directory
        of specs that extend one another is a tree: the longest line is the main one, the rest
        (the kernel-size variants, a spec written by `archdsl apply`) are branches."""
        from ..roadmap import roadmap
        from ..roadmap.render import notes, roadmap_table

        if plot is not None and plot.suffix.lower() != ".png":
            usage(f"--plot writes a PNG; name the file `{plot.with_suffix('.png')}`")
        try:
            rm = roadmap(directory, **overrides(set_))
        except ArchError as e:
            fail(e)
        if plot is not None:
            from ..roadmap.plot import plot_roadmap

            try:
                plot_roadmap(rm.rows, plot)
            except OSError as e:
                fail(ArchError(f"cannot write `{plot}`: {e.strerror or e}",
                               hint="check the path: its directory must exist and be writable",
                               code="E020"))
        if json_:
            print(rm.model_dump_json(indent=2))
            return
        if tree:
            from ..roadmap.render import roadmap_tree

            parts = [roadmap_tree(rm.rows, f"{rm.dir}: each step's change and cost")]
        else:
            parts = [roadmap_table(rm.rows), *(Text(line, style="yellow") for line in notes(rm.rows))]
        if out.is_terminal:
            out.print(*parts, sep="\n")
        else:  # piped: plain, wide enough not to wrap
            buf = io.StringIO()
            plain_console(file=buf, width=200, color_system=None).print(*parts, sep="\n")
            sys.stdout.write("".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines()))
        if plot is not None:
            say(f"wrote {plot}")
