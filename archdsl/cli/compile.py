"""`archdsl check SPEC` and `archdsl compile SPEC [--emit code|layers|json]`."""
# No `from __future__ import annotations`: typer reads the real annotations of the commands.

import json
import sys
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..lang.errors import ArchError
from ..report import count, gmacs
from .common import (FeaturesOpt, OutIndicesOpt, SetOpt, SpecArg, TapsOpt, fail, out, overrides, say, tap_options,
                     usage, visible)


def register(app: typer.Typer) -> None:
    @app.command()
    def check(spec: SpecArg, set_: SetOpt = None, features: FeaturesOpt = False, out_indices: OutIndicesOpt = None,
              taps: TapsOpt = None) -> None:
        """Validate a spec (syntax, names, shapes, its taps) without building it; with --features
        or --taps, the maps that build would return too."""
        from ..api import check as check_spec

        tapped = tap_options(features, out_indices, taps)
        try:
            net, ir = check_spec(spec, **tapped, **overrides(set_))
        except ArchError as e:
            fail(e)
        info = getattr(ir, "feature_info", None)
        say(f"ok: {net.name} ({net.path})" + (f"; {'maps' if features else 'taps'}: " + ", ".join(
            f"{t['module']} ({'x'.join(map(str, t['shape']))})" for t in info) if info else ""))


    @app.command("compile")
    def compile_(
        spec: SpecArg,
        set_: SetOpt = None,
        emit: Annotated[Optional[str], typer.Option(help="Instead of the summary print: `code` (the fx "
                                                    "GraphModule's Python), `layers` (a row per op) or `json`.")] = None,
        features: FeaturesOpt = False,
        out_indices: OutIndicesOpt = None,
        taps: TapsOpt = None,
    ) -> None:
        """Check a spec and print its cost per stage: output shape, params and MACs, and the
        taps the spec declares. With --features (or --taps) the backbone's: no head, and the
        maps it returns."""
        from ..api import analyze, build

        if emit not in (None, "code", "layers", "json"):
            usage(f"--emit takes code, layers or json, not `{emit}`")
        tapped = tap_options(features, out_indices, taps)
        try:
            if emit == "code":
                text = visible(build(spec, device="meta", **tapped, **overrides(set_)).code)
                if sys.stdout.isatty():
                    out.print(text, markup=False, highlight=False)
                else:  # redirected: the exact text, never re-wrapped at a console width
                    sys.stdout.write(text if text.endswith("\n") else text + "\n")
                return
            report = analyze(spec, **tapped, **overrides(set_))
        except ArchError as e:
            fail(e)
        if emit == "json":
            print(json.dumps(report.to_dict(), indent=2))
            return
        net = report.network
        shape = "x".join(map(str, net.input))
        say((net.name, "bold"), f"  ({net.path})  input {shape}, {net.classes} classes")
        table = Table(show_edge=False, header_style="bold")
        for col, justify in (("layer" if emit == "layers" else "stage", "left"), ("op", "left"),
                             ("output", "left"), ("params", "right"), ("MACs", "right")):
            if col == "op" and emit != "layers":
                continue
            table.add_column(col, justify=justify)
        rows = report.layers if emit == "layers" else report.stages
        for r in rows:
            cells = [visible(getattr(r, "path", None) or r.name)]
            if emit == "layers":
                cells.append(visible(r.op) + (f" ({r.detail})" if r.detail else ""))
            cells += ["x".join(map(str, r.shape)), count(r.params), f"{r.macs / 1e9:.3f} G"]
            table.add_row(*cells)
        out.print(table)
        if report.taps:
            if not report.taps_returned:
                say("taps the spec declares (`--features` builds the backbone that returns them):")
            taps_table = Table(show_edge=False, header_style="bold")
            for col, justify in (("tap", "left"), ("module", "left"), ("map (C x H x W)", "left"),
                                 ("channels", "right"), ("reduction", "right")):
                taps_table.add_column(col, justify=justify)
            for i, t in enumerate(report.taps):
                taps_table.add_row(str(i), visible(t["module"]), "x".join(map(str, t["shape"])), str(t["num_chs"]),
                                   str(t["reduction"]) if t["reduction"] else "-")
            out.print(taps_table)
        say("total: ", (f"{count(report.params)} params", "bold"), ", ", (gmacs(report.macs), "bold"),
            f" at {shape}; peak activation {count(report.peak_activation)} values per image")
