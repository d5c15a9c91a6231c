"""Golden diagnostics: every `tests/lang/diagnostics/NAME.arch` is checked with the CLI and its
stderr must equal `NAME.expected` exactly (exit 1, nothing on stdout, no traceback).

A fixture whose first line is `# args: ...` passes those arguments too (e.g. `--set =`).
Regenerate the expected files after a deliberate change of wording, then read the diff:

    UPDATE_GOLDEN=1 pytest tests/test_diagnostics.py
"""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

import archdsl
from archdsl.cli import app

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path("tests/lang/diagnostics")  # relative to REPO: paths print as a user would type them
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
NAMES = sorted(p.stem for p in (REPO / FIXTURES).glob("*.arch"))


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)


def extra_args(spec: Path) -> list[str]:
    first = spec.read_text().split("\n", 1)[0]
    return shlex.split(first.removeprefix("# args:")) if first.startswith("# args:") else []


def run_check(name: str):
    spec = FIXTURES / f"{name}.arch"
    return CliRunner().invoke(app, ["check", str(spec), *extra_args(spec)], catch_exceptions=False)


@pytest.mark.parametrize("name", NAMES)
def test_golden(name):
    result = run_check(name)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exit_code == 1, result.stdout
    assert result.stdout == ""
    expected = FIXTURES / f"{name}.expected"
    if UPDATE:
        expected.write_text(result.stderr)
    assert expected.exists(), f"no {expected}; run UPDATE_GOLDEN=1 pytest {__file__}"
    assert result.stderr == expected.read_text()


@pytest.mark.parametrize("name", [n for n in NAMES if not extra_args(FIXTURES / f"{n}.arch")])
def test_api_raises_the_same_error(name):
    """`archdsl.check` raises an ArchError (with a place) that renders as the CLI prints it."""
    with pytest.raises(archdsl.ArchError) as info:
        archdsl.check(str(FIXTURES / f"{name}.arch"))
    e = info.value
    assert e.render() + "\n" == (FIXTURES / f"{name}.expected").read_text()
    assert e.path is not None and e.line >= 1 and e.column >= 1


def codes() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for name in NAMES:
        text = (REPO / FIXTURES / f"{name}.expected").read_text()
        found[name] = set(re.findall(r"error\[(E\d+)\]", text))
    return found


def test_fixtures_cover_many_distinct_error_kinds():
    all_codes = set().union(*codes().values())
    assert len(all_codes) >= 22, sorted(all_codes)
    # every family of errors is represented: syntax, resolution, ops, shapes, --set, train
    assert {c[:2] for c in all_codes} >= {"E1", "E2", "E3", "E4", "E5", "E6"}


def test_several_errors_are_reported_at_once():
    several = {name for name in NAMES
               if (REPO / FIXTURES / f"{name}.expected").read_text().count("error[") >= 3}
    assert "several_errors" in several
    text = (REPO / FIXTURES / "several_errors.expected").read_text()
    assert [m for m in re.findall(r"error\[(E\d+)\]", text)] == ["E301", "E304", "E305"]


def test_dwconv8_suggests_the_odd_kernels_beside_it():
    result = run_check("dwconv8")
    assert result.exit_code == 1
    first, source, caret, hint = result.stderr.splitlines()
    assert first.startswith("tests/lang/diagnostics/dwconv8.arch:6:9: error[E302]: `dwconv8`")
    assert source.endswith("|         dwconv8")
    assert caret.endswith("|         ^^^^^^^")
    assert "did you mean `dwconv7` or `dwconv9`?" in hint


def test_unclosed_stages_at_end_of_file_names_the_open_brace():
    result = run_check("unclosed_stages")
    assert result.exit_code == 1
    assert result.stderr.startswith("tests/lang/diagnostics/unclosed_stages.arch:9:8: error[E102]:")
    assert "never closed" in result.stderr


def test_every_expected_file_has_its_spec():
    orphans = {p.stem for p in (REPO / FIXTURES).glob("*.expected")} - set(NAMES)
    assert not orphans
