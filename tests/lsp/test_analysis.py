"""The editor features as plain data (archdsl/lsp/analysis.py), without a server: which words
are offered where, and where a diagnostic lands."""
from __future__ import annotations

from pathlib import Path

from archdsl.lsp import analysis as A
from archdsl.lang.recipe import FIELDS
from compiler.ops import REGISTRY

REPO = Path(__file__).resolve().parents[2]
CONVNEXT_T = REPO / "specs" / "convnext_t.arch"


def at(text: str, needle: str, offset: int | None = None) -> tuple[int, int]:
    for i, line in enumerate(text.split("\n")):
        if needle in line:
            return i, line.index(needle) + (len(needle) if offset is None else offset)
    raise AssertionError(needle)


def labels(a: A.Analysis, pos) -> list[str]:
    return [i.label for i in A.completions(a, pos)]


def test_completion_by_context():
    text = CONVNEXT_T.read_text()
    a = A.analyze(text, str(CONVNEXT_T))
    assert labels(a, at(text, "    96  ")) == ["convnext"]                       # a stage's block
    assert set(labels(a, at(text, "    epochs", 5))) == {*FIELDS, "augment"}     # train { } fields
    assert {"4x", "s2", "nobias"} <= set(labels(a, at(text, "pwconv ")))         # pwconv's arguments
    assert "g32" not in labels(a, at(text, "pwconv "))                           # pwconv takes no groups
    ops = labels(a, at(text, "        gelu", 8))
    assert "dwconvK" in ops and "gelu" in ops and "residual" in ops and len(ops) >= len(REGISTRY)
    assert "stages" in labels(a, at(text, "head", 0))                           # a section, at the top


def test_error_in_a_parent_is_shown_at_extends(tmp_path):
    (tmp_path / "base.arch").write_text("network base\ninput 3x32x32\nblock b {\n    dwconv8\n}\n"
                                        "stages {\n    8 b x1\n}\n")
    child = tmp_path / "child.arch"
    text = "network child extends base\nclasses 10\n"
    a = A.analyze(text, str(child))
    (d,) = A.diagnostics(a)
    assert d.code == "E302" and d.range == ((0, 22), (0, 26))
    assert d.message.startswith(f"in {tmp_path / 'base.arch'}:4:5: `dwconv8`")


def test_positions_count_utf16_units():
    """LSP counts characters in UTF-16 units: `𝕏` (outside the BMP) is two."""
    text = "network n\ninput 3x32x32\nblock b {\n    relu, 𝕏𝕏 dwconv8\n}\nstages {\n    8 b x1\n}\n"
    (d,) = A.diagnostics(A.analyze(text, "/tmp/n.arch"))
    assert d.code == "E101" and d.range == ((3, 10), (3, 12))
    a = A.analyze("network n  # 𝕏\ninput 3x32x32\nblock b {\n    relu\n}\nstages {\n    8 b x1\n}\n", "/tmp/n.arch")
    assert A.word_at(a, (0, 9)) == ("n", ((0, 8), (0, 9)))


def test_every_argument_kind_has_words_to_offer():
    from compiler.ops import ARG_KINDS

    assert set(ARG_KINDS) == set(A.ARG_WORDS)
