"""`archdsl fmt`, `flatten`, `apply` and `ablate`: specs written by the printer, changes as patches."""
# No `from __future__ import annotations`: typer reads the real annotations of the commands below.

import difflib
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..lang.errors import ArchError, display_path
from .common import SetOpt, SpecArg, err, fail, out, overrides

OutOpt = Annotated[Optional[Path], typer.Option("-o", "--output", help="Write the spec to this file instead of "
                                                "printing it.", dir_okay=False)]


def _write(text: str, path: Optional[Path]) -> None:
    if path is None:
        sys.stdout.write(text)
        return
    try:
        path.write_text(text)
    except OSError as e:
        err.print(f"error: cannot write `{path}`: {e.strerror or e}", markup=False)
        raise typer.Exit(1) from None
    err.print(f"wrote {path}", markup=False)


def register(app: typer.Typer) -> None:
    @app.command("fmt")
    def fmt_cmd(
        specs: Annotated[list[str], typer.Argument(help="Spec files or shipped names.")],
        check: Annotated[bool, typer.Option("--check", help="Print nothing but what is not formatted (as a "
                                            "diff) and exit 1 if any file is not.")] = False,
        write: Annotated[bool, typer.Option("--write", "-w", help="Rewrite the files in place.")] = False,
    ) -> None:
        """Print a spec in canonical form: sections in order, aligned, comments kept.

        `archdsl fmt --check specs/*.arch` for CI; `archdsl fmt -w my.arch` to rewrite."""
        from ..lang.printer import format_spec
        from ..lang.resolve import read_spec
        from ..lang.specpath import find_spec

        if check and write:
            err.print("error: --check and --write exclude each other")
            raise typer.Exit(2)
        unformatted = []
        for name in specs:
            try:
                path = find_spec(name)
                spec = read_spec(path)
                text = format_spec(spec)
            except ArchError as e:
                fail(e)
            original = path.read_text()
            shown = display_path(str(path))
            if check:
                if text != original:
                    unformatted.append(shown)
                    sys.stdout.writelines(difflib.unified_diff(
                        original.splitlines(True), text.splitlines(True), f"{shown} (as written)",
                        f"{shown} (formatted)"))
            elif write:
                if text != original:
                    _write(text, path)
            else:
                sys.stdout.write(text)
        if check:
            if unformatted:
                err.print(f"{len(unformatted)} of {len(specs)} not formatted: " + ", ".join(unformatted)
                          + "; `archdsl fmt -w FILE` rewrites", markup=False)
                raise typer.Exit(1)
            err.print(f"{len(specs)} formatted", markup=False)

    @app.command("flatten")
    def flatten_cmd(spec: SpecArg, set_: SetOpt = None, output: OutOpt = None) -> None:
        """Print the fully resolved network as one self-contained spec: no `extends`, every
        block, the `set` lines and `--set` overrides applied, the recipe written out."""
        from ..api import as_network
        from ..lang.flatten import flatten
        from ..lang.printer import format_spec

        try:
            net = as_network(spec, **overrides(set_))
        except ArchError as e:
            fail(e)
        _write(format_spec(flatten(net), layout=False), output)
