"""docs/language.md is generated from the registry; it must be current, and every op's
documented example must compile."""
from __future__ import annotations

import pytest

import archdsl
from archdsl.lang import docgen
from compiler import ops as registry


def test_language_reference_is_up_to_date():
    assert docgen.DOC.read_text() == docgen.generate(), "run `python -m archdsl.lang.docgen`"


@pytest.mark.parametrize("name", sorted(registry.REGISTRY))
def test_every_op_is_documented_and_its_example_compiles(name):
    op = registry.REGISTRY[name]
    text = docgen.DOC.read_text()
    assert f"`{op.example}`" in text and op.summary in text
    # Place the example where it fits: on a vector in the head, as the head's reduction of the
    # map, or on a 128-channel map inside a block.
    block, head, stem, size = "conv1 128", "gap, linear", "", 16
    if op.takes == "vec":
        head = f"gap, {op.example}"
    elif name in ("gap", "flatten"):
        head = f"{op.example}, linear"
    elif name in ("tokens", "clstoken", "posembed", "clspool"):  # token ops: a ViT's stem and head
        stem, block, head = "stem conv4 s4, tokens, clstoken, posembed\n", "pwconv 1x", "ln, clspool, linear"
    elif op.takes == "seq":  # on tokens, in a block (MLP-Mixer's token MLP)
        stem, block, head = "stem conv4 s4, tokens\n", f"pwconv 1x\n {op.example}", "ln, gap, linear"
    else:
        block += f"\n {op.example}"
        size = 14 if name == "wattn" else size  # 7x7 windows tile a 14x14 map
    spec = (f"network t\ninput 3x{size}x{size}\nclasses 5\n{stem}block b {{\n {block}\n}}\nstages {{\n 128 b x1\n}}\n"
            f"head {head}\n")
    report = archdsl.analyze(archdsl.loads(spec))
    assert any(layer.op == name for layer in report.layers)
    archdsl.build(archdsl.loads(spec), device="meta")
