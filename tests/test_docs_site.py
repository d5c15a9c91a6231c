"""The documentation site: generated pages are current, the MkDocs build is clean in strict
mode (a broken link or anchor fails), the README stays a front page, and every `archdsl`
command the docs show still parses against the real command line."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import typer.core

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_generated_pages_are_current():
    r = subprocess.run([sys.executable, "docs/generate.py", "--check"], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_site_builds_in_strict_mode(tmp_path):
    pytest.importorskip("mkdocs")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                       cwd=REPO, capture_output=True, text=True,
                       env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "site" / "tutorial" / "index.html").exists()


def test_every_page_is_in_the_nav():
    nav = (REPO / "mkdocs.yml").read_text()
    for page in (REPO / "docs").glob("*.md"):
        assert f" {page.name}" in nav, f"docs/{page.name} is not in mkdocs.yml's nav"


def test_readme_is_a_front_page():
    n = len((REPO / "README.md").read_text().splitlines())
    assert n <= 450, f"README.md has {n} lines: move guides and reference into docs/"


def _shown_commands():
    """(page, line) for each `archdsl ...` command shown in a code block of the docs."""
    for page in PAGES:
        inside = False
        for line in page.read_text().splitlines():
            if line.startswith("```"):
                inside = not inside
                continue
            text = line.strip().removeprefix("$ ")
            if inside and text.startswith("archdsl ") and "&&" not in text:
                yield page.name, text


def test_every_shown_command_parses():
    from archdsl.cli.main import app

    group = typer.main.get_command(app)
    shown = list(_shown_commands())
    assert len(shown) >= 20
    for page, text in shown:
        words = shlex.split(text.split("  #")[0].split(" | ")[0].split(" > ")[0], comments=True)[1:]
        if not words or words[0].startswith("-"):
            continue
        cmd = group.commands.get(words[0])
        assert cmd is not None, f"{page}: `{text}` names no command"
        click = typer.core._click  # typer's own copy of click, whose errors it raises
        try:
            cmd.make_context(words[0], words[1:], parent=click.Context(group, info_name="archdsl"))
        except click.exceptions.Exit:
            pass
        except click.exceptions.UsageError as e:
            pytest.fail(f"{page}: `{text}` does not parse: {e}")
