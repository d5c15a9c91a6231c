"""`concat { }` and `subtract { }` through the printer, the diff, weight transfer and the drawing
(their numbers against timm/torchvision are in tests/interop/test_joins_parity.py)."""
from __future__ import annotations

import archdsl
from archdsl.interop.draw import draw_network
from archdsl.interop.transfer import op_map
from archdsl.lang.parser import parse
from archdsl.lang.printer import format_spec, same

SPEC = """network joins
input 3x32x32
classes 10
block b(k) {
    concat {
        bn, relu
        conv3 k nobias
    }
    residual {
        gn g1
        subtract { avgpool3 }
    }
}
stem conv3 16
stages {
    16 b x2 k=8
}
head gap, linear
"""


def test_joins_round_trip_through_the_printer():
    source = parse(SPEC, "<joins>")
    for layout in (True, False):
        text = format_spec(source, layout=layout)
        assert same(parse(text, "<again>"), source)
    assert "subtract { avgpool3 }" in format_spec(source, layout=False)  # a body of ops: one line
    assert "concat {\n        bn, relu\n        conv3 k nobias\n    }" in format_spec(source)  # as written


def test_concat_adds_the_branch_channels_and_subtract_keeps_the_shape():
    report = archdsl.analyze(archdsl.loads(SPEC))
    assert report.stages[1].shape == (32, 32, 32)  # 16 + 2 blocks x k=8
    assert [r.in_shape[0] for r in report.layers if r.op == "gn"] == [24, 32]


def test_diff_names_the_join_and_tells_it_from_a_gate():
    wider = SPEC.replace("k=8", "k=12")
    text = str(archdsl.diff(archdsl.loads(SPEC), archdsl.loads(wider)))
    assert "concat: `conv3 k nobias` -> `conv3 k nobias` (width k (k = 8) -> k (k = 12))" in text
    other = SPEC.replace("subtract { avgpool3 }", "gate { avgpool3 }")
    text = str(archdsl.diff(archdsl.loads(SPEC), archdsl.loads(other)))
    assert "subtract { avgpool3 }" in text and "gate { avgpool3 }" in text


def test_transfer_pairs_ops_inside_the_joins():
    wider = SPEC.replace("k=8", "k=12")
    pairs = op_map(archdsl.loads(SPEC), archdsl.loads(wider))
    assert pairs["stages.0.blocks.1.conv"] == "stages.0.blocks.1.conv"
    assert pairs["stages.0.blocks.0.gn"] == "stages.0.blocks.0.gn"


def test_draw_shows_the_joins_and_the_stage_values(tmp_path):
    draw_network(archdsl.loads(SPEC), tmp_path / "j.svg")
    svg = (tmp_path / "j.svg").read_text()
    assert "concat: input | branch" in svg and "branch - input" in svg
    assert "conv3 8 nobias" in svg  # `k` as stage 1 gives it
