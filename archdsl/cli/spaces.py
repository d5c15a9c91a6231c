"""`archdsl space SPACE` (what a space holds and costs) and `archdsl sample SPACE -n N -o DIR`
(points inside a complexity window, written as specs)."""
# No `from __future__ import annotations`: typer reads the real annotations of the commands.

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..lang.errors import ArchError, display_path
from .common import SetOpt, SpecArg, fail, failed, out, overrides, say, usage, visible

SeedOpt = Annotated[int, typer.Option("--seed", help="The sampler's seed: the same seed gives the same points.",
                                      min=0, max=2**63 - 1)]


def _coster(spec: str, set_):
    from ..spaces.cost import Coster

    return Coster.open(spec, overrides(set_))


def register(app: typer.Typer) -> None:
    @app.command("space")
    def space_cmd(spec: SpecArg, set_: SetOpt = None, n: Annotated[int, typer.Option(
            "-n", help="Points to draw for the cost quantiles.", min=1, max=10_000_000)] = 1000,
            seed: SeedOpt = 0, json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
        """What a space holds: its open values, how many points, and params / MACs / activations
        (min, quartiles, max) over a sample of N points."""
        import random

        from ..spaces.sample import SampleResult, draw_costs, human, quantiles
        from ..spaces.sampler import count_points

        try:
            coster = _coster(spec, set_)
            result = SampleResult()
            rng = random.Random(seed)
            for _ in range(n):
                draw_costs(coster, rng, result)
        except ArchError as e:
            fail(e)
        space = coster.space
        points = count_points(space) if space else 1
        stats = {k: quantiles(v) for k, v in result.seen.items() if v}
        if json_:
            print(json.dumps({"space": coster.name, "path": coster.path, "hash": space.hash if space else None,
                              "points": points, "drawn": result.drawn, "checked": len(result.seen["macs"]),
                              "constrained": result.constrained, "failed": result.failures,
                              "values": {v.name: v.dist.text for v in space.free} if space else {},
                              "quantiles": stats}, indent=2))
            return
        say((coster.name, "bold"), f"  ({display_path(coster.path)})  space {space.hash if space else '-'}")
        if space:
            table = Table(show_edge=False, header_style="bold")
            for col in ("value", "open as", "values it takes"):
                table.add_column(col)
            for v in space.free:
                size = v.dist.size()
                table.add_row(visible(v.name), visible(v.dist.text), "unbounded" if size is None else f"{size:,}")
            out.print(table)
        say("points: ", ("unbounded" if points is None else f"{points:,}", "bold"),
            " (before the constraints)" if space and space.requires else "")
        checked = len(result.seen["macs"])
        say(f"drawn {result.drawn:,}: {checked:,} check ({checked / max(1, result.drawn):.1%}), "
            f"{result.constrained:,} break a constraint, {result.failures:,} do not check")
        for f in list(result.failed.values())[:3]:
            values = " ".join(f"{k}={v}" for k, v in f.values.items())
            say(f"  {f.count:,} like {values}: {f.error}")
        if not checked:
            failed("no drawn point checks; nothing to cost", code="E177")
        table = Table(show_edge=False, header_style="bold")
        for col in ("", "min", "25%", "median", "75%", "max"):
            table.add_column(col, justify="right" if col else "left")
        for k, label in (("params", "params"), ("macs", "MACs"), ("activations", "activations")):
            table.add_row(label, *(human(x) for x in stats[k]))
        out.print(table)
        say("(activations: the elements of every op's output, per image)")

    @app.command("sample")
    def sample_cmd(spec: SpecArg,
                   out_dir: Annotated[Path, typer.Option("-o", "--out", help="Folder for the point specs.")],
                   n: Annotated[int, typer.Option("-n", help="Points to write.", min=1, max=100_000)] = 8,
                   macs: Annotated[Optional[str], typer.Option("--macs", help="MACs window LOW:HIGH, e.g. 4.4G:4.5G "
                                                               "(an end may be left out: `:5G`).")] = None,
                   params: Annotated[Optional[str], typer.Option("--params", help="Params window, e.g. 20M:30M.")] = None,
                   seed: SeedOpt = 0, set_: SetOpt = None) -> None:
        """N points of a space inside a MACs / params window, each written as a self-contained spec
        that names its space and values."""
        from ..spaces.sample import parse_window, sample, write_points

        if str(out_dir).strip() in ("", "."):  # typer reads -o '' as Path('.'): the points would litter here
            usage("-o '' (or .) names the current directory; name a folder for the points, e.g. -o points")
        try:
            windows = {"macs": parse_window(macs, "macs") if macs else None,
                       "params": parse_window(params, "params") if params else None}
            coster = _coster(spec, set_)
            result = sample(coster, n, seed, **windows)
        except ArchError as e:
            fail(e)
        try:
            paths = write_points(coster, result, out_dir)
        except OSError as e:
            failed(f"cannot write the points to `{out_dir}`: {e.strerror or e}")
        except ArchError as e:
            fail(e)
        say(f"wrote {len(paths)} point{'s' * (len(paths) != 1)} of {coster.name} to {out_dir}/ "
            f"(and points.json)")
        say(f"drawn {result.drawn:,}: accepted {len(result.points):,} ({result.acceptance:.2%}); "
            f"{result.outside:,} outside the window, {result.constrained:,} broke a constraint, "
            f"{result.failures:,} did not check")
        for f in result.failed.values():
            values = " ".join(f"{k}={v}" for k, v in f.values.items())
            say(f"  skipped {f.count:,} like {values}: {f.error}")
        if len(paths) < n:
            failed(f"only {len(paths)} of {n} points found in the window after {result.drawn:,} draws", code="E177")
