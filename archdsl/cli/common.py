"""What every command group shares: the consoles, the SPEC argument and `--set` option,
printing a user error and reading `--set` items. Command modules import this, never each other."""
from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer
from rich.console import Console

from ..lang.errors import ArchError

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

SpecArg = Annotated[str, typer.Argument(help="A spec: a path to a .arch file or a shipped name (convnext_t, step05).")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a scalar: KEY=VALUE (repeatable), "
                                                     "e.g. classes=10, input=3x64x64, depths=2,2,6,2, train.epochs=5.")]


def fail(e: ArchError) -> None:
    # Plain write, not rich: a diagnostic must never be re-wrapped at the terminal width.
    sys.stderr.write(e.render() + "\n")
    raise typer.Exit(1)


def overrides(items: list[str] | None) -> dict[str, str]:
    from ..lang.overrides import parse_set

    return parse_set(items or [])
