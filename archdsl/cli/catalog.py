"""`archdsl list [PATTERN] [--json]`: the shipped specs (and those on ARCHDSL_SPEC_PATH), with
family, parameters and MACs at each spec's own input, as timm's `list_models` lists its models."""
# No `from __future__ import annotations`: typer reads the real annotations of the commands.

import fnmatch
import json
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..lang.errors import ArchError
from .common import fail, out, visible


def catalog(pattern: str = "*") -> list[dict]:
    """One row per spec whose name matches the shell-style `pattern`, in natural order."""
    from ..api import analyze
    from ..lang.specpath import family, natural, shipped_names

    rows = []
    shipped = shipped_names()
    for name, path in sorted(shipped.items(), key=lambda item: natural(item[0])):
        if not fnmatch.fnmatchcase(name, pattern):
            continue
        report = analyze(path)
        net = report.network
        kin = family(path)
        parent = shipped.get(net.chain[0]) if net.chain else None
        if kin == name and parent is not None:  # a name with no size word (`resnet50_retinanet`): its base's
            kin = family(parent)
        rows.append({"name": name, "family": kin, "extends": net.chain[0] if net.chain else None, "input": list(net.input),
                     "classes": net.classes, "params": report.params, "macs": report.macs, "path": str(path)})
    return rows


def register(app: typer.Typer) -> None:
    @app.command("list")
    def list_cmd(
        pattern: Annotated[Optional[str], typer.Argument(help="Only names matching this shell pattern, "
                                                         "e.g. 'convnext*' or '*_t'.", show_default=False)] = None,
        json_: Annotated[bool, typer.Option("--json", help="Print a JSON list (name, family, extends, input, "
                                            "classes, params, macs, path) instead of the table.")] = False,
    ) -> None:
        """The specs archdsl ships, with family, parameters and MACs at each spec's input."""
        try:
            rows = catalog(pattern or "*")
        except ArchError as e:  # a broken spec on ARCHDSL_SPEC_PATH
            fail(e)
        if json_:
            print(json.dumps(rows, indent=2))
            return
        table = Table(show_edge=False, header_style="bold", box=None, padding=(0, 2), pad_edge=False)
        for col, justify in (("name", "left"), ("family", "left"), ("input", "left"), ("params (M)", "right"),
                             ("GMACs", "right")):
            table.add_column(col, justify=justify)
        for r in rows:
            table.add_row(visible(r["name"]), visible(r["family"]), "x".join(map(str, r["input"])),
                          f"{r['params'] / 1e6:.2f}", f"{r['macs'] / 1e9:.2f}")
        out.print(table)
