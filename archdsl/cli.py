"""The `archdsl` command. Every user error prints rustc-style and exits 1; usage errors exit 2."""
from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from .lang.errors import ArchError
from .report import count, gmacs

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="archdsl: describe a conv net in .arch, check it, count it, build it.")
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
    from .lang.overrides import parse_set

    return parse_set(items or [])


@app.command()
def check(spec: SpecArg, set_: SetOpt = None) -> None:
    """Validate a spec (syntax, names, shapes) without building it."""
    from .api import check as check_spec

    try:
        net, _ = check_spec(spec, **overrides(set_))
    except ArchError as e:
        fail(e)
    out.print(f"ok: {net.name} ({net.path})")


@app.command("compile")
def compile_(
    spec: SpecArg,
    set_: SetOpt = None,
    emit: Annotated[Optional[str], typer.Option(help="Instead of the summary print: `code` (the fx "
                                                "GraphModule's Python), `layers` (a row per op) or `json`.")] = None,
) -> None:
    """Check a spec and print its cost per stage: output shape, params and MACs."""
    from .api import analyze, build

    if emit not in (None, "code", "layers", "json"):
        err.print(f"error: --emit takes code, layers or json, not `{emit}`")
        raise typer.Exit(2)
    try:
        if emit == "code":
            out.print(build(spec, device="meta", **overrides(set_)).code, markup=False, highlight=False)
            return
        report = analyze(spec, **overrides(set_))
    except ArchError as e:
        fail(e)
    if emit == "json":
        print(json.dumps(report.to_dict(), indent=2))
        return
    net = report.network
    shape = "x".join(map(str, net.input))
    out.print(f"[bold]{net.name}[/bold]  ({net.path})  input {shape}, {net.classes} classes")
    table = Table(show_edge=False, header_style="bold")
    for col, justify in (("layer" if emit == "layers" else "stage", "left"), ("op", "left"),
                         ("output", "left"), ("params", "right"), ("MACs", "right")):
        if col == "op" and emit != "layers":
            continue
        table.add_column(col, justify=justify)
    rows = report.layers if emit == "layers" else report.stages
    for r in rows:
        cells = [getattr(r, "path", None) or r.name]
        if emit == "layers":
            cells.append(r.op)
        cells += ["x".join(map(str, r.shape)), count(r.params), f"{r.macs / 1e9:.3f} G"]
        table.add_row(*cells)
    out.print(table)
    out.print(f"total: [bold]{count(report.params)} params[/bold], [bold]{gmacs(report.macs)}[/bold] "
              f"at {shape}; peak activation {count(report.peak_activation)} values per image")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


from .cli_roadmap import register as _register_roadmap; _register_roadmap(app)  # noqa: E402,E702  diff, roadmap
from .cli_train import register as _register_train; _register_train(app)  # noqa: E402,E702  train
