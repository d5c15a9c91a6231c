"""editors/vscode/ stays in step with the language: its grammar colours every op of the registry
(and every op word in the shipped specs), and its manifest starts the command that exists."""
from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from archdsl.cli import app
from archdsl.lang.resolve import read_spec
from archdsl.lang.specpath import shipped_names
from archdsl.lsp.analysis import all_ops
from compiler.ops import REGISTRY

VSCODE = Path(__file__).resolve().parents[2] / "editors" / "vscode"


def test_grammar_knows_every_op():
    grammar = json.loads((VSCODE / "syntaxes" / "arch.tmLanguage.json").read_text())
    op = re.compile(grammar["repository"]["op"]["match"])
    kernel, plain = (m.split("|") for m in re.findall(r"\(([a-z0-9|]+)\)", op.pattern))
    assert sorted(kernel) == sorted(n for n, d in REGISTRY.items() if d.kernel)
    assert sorted(plain) == sorted(n for n, d in REGISTRY.items() if not d.kernel)
    words = {o.name.text for path in shipped_names().values() for o in all_ops(read_spec(path))}
    assert len(words) > 30
    for word in words:
        assert op.fullmatch(word), word
    assert not op.fullmatch("dwconv") and not op.fullmatch("relu7") and not op.fullmatch("convnext")


def test_manifest_starts_the_language_server():
    manifest = json.loads((VSCODE / "package.json").read_text())
    (language,) = manifest["contributes"]["languages"]
    assert language["extensions"] == [".arch"]
    assert json.loads((VSCODE / language["configuration"].removeprefix("./")).read_text())["comments"] == \
        {"lineComment": "#"}
    command = manifest["contributes"]["configuration"]["properties"]["archdsl.command"]["default"]
    assert command == ["archdsl", "lsp"] and manifest["main"] == "./extension.js"
    assert "archdsl.command" in (VSCODE / "extension.js").read_text()
    result = CliRunner().invoke(app, ["lsp", "--help"])
    assert result.exit_code == 0 and "language server" in result.output


def test_grammar_knows_every_section_keyword():
    """The TextMate grammar's statement keywords are the lark grammar's sections (`let` and
    `require` were missing when spaces came in)."""
    lark = (Path(__file__).resolve().parents[2] / "archdsl" / "lang" / "grammar.lark").read_text()
    sections = re.search(r"\?section:(.*?)\n\n", lark, re.S).group(1)
    rules = re.findall(r"[|:]?\s*([a-z_]+)", sections)
    words = {re.search(rf'^{rule}:\s*"([a-z]+)"', lark, re.M).group(1) for rule in rules}
    grammar = json.loads((VSCODE / "syntaxes" / "arch.tmLanguage.json").read_text())
    listed = set(re.search(r"\((input\|[a-z|]+)\)", json.dumps(grammar)).group(1).split("|"))
    assert {"taps", "let", "require"} <= words
    assert words - {"block"} == listed
