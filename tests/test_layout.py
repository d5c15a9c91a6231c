"""The rooms of archdsl import one way: cli -> lsp, roadmap -> sweep -> training, interop -> diff
-> spaces -> api -> report -> lang -> compiler (data sits beside report: it imports lang only),
and compiler never imports archdsl. Read from the source (every import, also those inside
functions), so a lazy import cannot slip past."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RANK = {"cli": 7, "lsp": 6, "roadmap": 6, "evaluate": 6, "sweep": 5.5, "training": 5, "interop": 5, "diff": 4,
        "summary": 4, "spaces": 3.5, "api": 3, "report": 2, "data": 2, "lang": 1, "atomic": 0}


def room(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "compiler":
        return "compiler"
    return parts[1] if parts[0] == "archdsl" and len(parts) > 1 else None


def imports(path: Path) -> list[tuple[str, int]]:
    rel = path.relative_to(ROOT).with_suffix("").parts
    package = list(rel[:-1]) if rel[-1] != "__init__" else list(rel[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
            found += [(n, node.lineno) for n in names]
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
    return found


SOURCES = sorted(p for p in [*ROOT.glob("archdsl/**/*.py"), *ROOT.glob("compiler/**/*.py")]
                 if p.parts[-2:] != ("archdsl", "__init__.py") and p.name != "__main__.py")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_one_way(path):
    here = room(".".join(path.relative_to(ROOT).with_suffix("").parts))
    for target, line in imports(path):
        there = room(target)
        if there is None or there == here:
            continue
        where = f"{path.relative_to(ROOT)}:{line} imports {target}"
        assert here != "compiler", f"{where}: the compiler never imports archdsl"
        assert there == "compiler" or RANK[there] < RANK[here], f"{where}: imports must run downward"


@pytest.mark.parametrize("path", sorted(ROOT.glob("archdsl/cli/*.py")), ids=lambda p: p.name)
def test_cli_modules_import_no_sibling(path):
    if path.stem in ("main", "__init__"):
        return
    for target, line in imports(path):
        if target.startswith("archdsl.cli."):
            assert target == "archdsl.cli.common", f"{path.name}:{line} imports its sibling {target}"


def test_every_room_says_what_it_holds():
    for init in ROOT.glob("archdsl/*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and "may import" in doc.lower(), f"{init.relative_to(ROOT)} needs a docstring saying what it may import"
