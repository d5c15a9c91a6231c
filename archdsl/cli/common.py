"""What every command group shares: the consoles, the SPEC argument and `--set` option,
printing a user error and reading `--set` items. Command modules import this, never each other.

Text safety, for every command (present and future): nothing from a spec, a path or the
command line may be read as rich markup or reach the terminal with control characters.
So the consoles here have markup and emoji off, and user-derived text goes through
`say`/`shout` (plain, control characters escaped by `visible`) or `styled` (a rich Text whose
user parts are never parsed). Use these instead of building a `Console` or an f-string with
`[bold]...[/bold]` around user text; errors go through `fail` (rendered by lang/errors.py,
which escapes the same way).
"""
from __future__ import annotations

import errno
import sys
from typing import Annotated, Optional

import typer
from rich.console import Console, ConsoleDimensions
from rich.text import Text

from ..lang.errors import ArchError, visible

__all__ = ["FeaturesOpt", "OutIndicesOpt", "PIPE_WIDTH", "SetOpt", "SpecArg", "TapsOpt", "complete_spec",
           "tap_options", "err", "fail", "out", "overrides", "plain_console", "say", "shout",
           "styled", "usage", "visible"]

# Wide enough that no cell of a table is ever cut or wrapped: rich falls back to 80 columns
# when its stream is a pipe or a file, and `compile --emit layers | cat` would show `stages.0.a…`.
PIPE_WIDTH = 10_000


class StreamConsole(Console):
    """A console that is as wide as the terminal when it writes to one, and PIPE_WIDTH
    columns wide (no wrapping, no ellipsis) when its stream is a pipe or a file."""

    @property
    def size(self) -> ConsoleDimensions:
        dims = super().size
        return dims if self.is_terminal else ConsoleDimensions(PIPE_WIDTH, dims.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)

    def on_broken_pipe(self) -> None:
        """The reader went away (`| head`): raise, and let the CLI end quietly with status 0
        (rich itself would exit 1)."""
        raise BrokenPipeError(errno.EPIPE, "the reader closed the pipe")


out = StreamConsole(highlight=False, markup=False, emoji=False)
err = StreamConsole(stderr=True, highlight=False, markup=False, emoji=False)

def complete_spec(incomplete: str) -> list[tuple[str, str]]:
    """Shell completion for a SPEC: the shipped names and the .arch files (and directories)
    that start with what has been typed."""
    from pathlib import Path

    from ..lang.specpath import shipped_names

    found = [(name, "shipped spec") for name in sorted(shipped_names()) if name.startswith(incomplete)]
    folder, _, stem = incomplete.rpartition("/")
    base = Path(folder or ".")
    try:
        entries = sorted(base.iterdir()) if base.is_dir() else []
    except OSError:
        entries = []
    for entry in entries:
        if entry.name.startswith(stem) and not entry.name.startswith(".") and \
                (entry.suffix == ".arch" or entry.is_dir()):
            shown = f"{folder}/{entry.name}" if folder else entry.name
            found.append((shown + ("/" if entry.is_dir() else ""), "directory" if entry.is_dir() else "spec file"))
    return found


SpecArg = Annotated[str, typer.Argument(help="A spec: a path to a .arch file or a shipped name (convnext_t, step05).",
                                        autocompletion=complete_spec)]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a scalar: KEY=VALUE (repeatable), "
                                                     "e.g. classes=10, input=3x64x64, depths=2,2,6,2, train.epochs=5.")]


FeaturesOpt = Annotated[bool, typer.Option("--features", help="A backbone, no head: the maps the spec's `taps` "
                                            "declare, else those at the end of each stage (each block where "
                                            "there is one stage).")]
OutIndicesOpt = Annotated[Optional[str], typer.Option("--out-indices", help="With --features: which of those maps, "
                                                      "e.g. 1,2,3 or -1 (the last).", show_default=False)]
TapsOpt = Annotated[Optional[str], typer.Option("--taps", help="Named maps instead (of the spec's own too): stem, "
                                                "stages.I, stages.I.blocks.J, downsample.I or an op's path, "
                                                "comma-separated; without --features the logits come first, and "
                                                "`head` or a vector may be named.", show_default=False)]


def tap_options(features: bool, out_indices: str | None, taps: str | None) -> dict:
    """--features/--out-indices/--taps as archdsl.build's keywords. A non-integer index, and
    --out-indices without --features or beside --taps, are usage errors that name the options
    (archdsl.build's own E411 would give a Python hint)."""
    kw: dict = {}
    if features:
        kw["features"] = True
    if out_indices is not None and taps is not None:
        usage("give --out-indices or --taps, not both: --out-indices picks among the stages' maps (or the spec's "
              "taps), --taps names the maps itself")
    if out_indices is not None:
        try:
            kw["out_indices"] = tuple(int(i) for i in out_indices.split(","))
        except ValueError:
            usage(f"--out-indices takes integers separated by commas (1,2,3), not `{out_indices}`")
        if not features:
            usage(f"--out-indices picks among the maps of a features build: add --features (`--features "
                  f"--out-indices {out_indices}`), or name any map with --taps (without --features the model "
                  "returns the logits and the taps)")
    if taps is not None:
        kw["taps"] = [t.strip() for t in taps.split(",") if t.strip()]
        if not kw["taps"]:
            usage("--taps takes map names separated by commas (stem, stages.1, ...), not an empty list")
    return kw


def plain_console(**kwargs) -> Console:
    """A console (e.g. on a buffer, for piped output) with the same safety as `out`."""
    return Console(highlight=False, markup=False, emoji=False, **kwargs)


def styled(*parts: str | tuple[str, str]) -> Text:
    """A line from plain parts and (text, style) pairs, user text escaped and never parsed:
    `styled((net.name, "bold"), f"  ({net.path})")`."""
    text = Text()
    for part in parts:
        content, style = (part, "") if isinstance(part, str) else part
        text.append(visible(str(content)), style=style)
    return text


def say(*parts: str | tuple[str, str]) -> None:
    """Print a line of user-derived text on stdout, safely (see the module docstring)."""
    out.print(styled(*parts), soft_wrap=True)


def shout(*parts: str | tuple[str, str]) -> None:
    """The same on stderr."""
    err.print(styled(*parts), soft_wrap=True)


def usage(message: str) -> None:
    """A usage error: `error: ...` on stderr, exit 2."""
    shout(f"error: {message}")
    raise typer.Exit(2)


def failed(message: str, code: str = "E020") -> None:
    """An error that is not a diagnostic (a file that cannot be read or written: E020):
    `error[CODE]: ...`, exit 1."""
    shout(f"error[{code}]: {message}")
    raise typer.Exit(1)


def fail(e: ArchError) -> None:
    # Plain write, not rich: a diagnostic must never be re-wrapped at the terminal width.
    sys.stderr.write(e.render() + "\n")
    raise typer.Exit(1)


def overrides(items: list[str] | None) -> dict[str, str]:
    from ..lang.overrides import parse_set

    return parse_set(items or [])
