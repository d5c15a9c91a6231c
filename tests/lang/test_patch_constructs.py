"""Patches across the convnet constructs: a gate is inserted or removed as a unit, with the unit it follows; a
`shortcut none` and per-stage values (`t=6`) are edits too; applying a step onto a network
built of gates and guards either applies by role or is a located conflict, never a traceback."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import archdsl
from archdsl.cli import app
from archdsl.diff.change import between, change
from archdsl.lang.patch import Patch, apply_patch, child_spec
from archdsl.lang.printer import format_spec

REPO = Path(__file__).resolve().parents[2]
SE_GATE = "gate { gap, conv1 0.0625x, relu, conv1, sigmoid }"


def _round_trip(patch: Patch, parent, child, tmp_path):
    """`patch` applied to `parent` is `child`, and so is the spec `archdsl apply` writes for it."""
    result, conflicts = apply_patch(patch, parent)
    assert not conflicts
    assert not archdsl.diff(result, child), archdsl.diff(result, child)
    text = format_spec(child_spec(result, parent, "again"), layout=False)
    spec = tmp_path / "again.arch"
    spec.write_text(text)
    assert not archdsl.diff(archdsl.load(spec), child), text
    assert Patch.from_json(patch.to_json()) == patch
    return text


def test_se_resnet50_is_resnet50_plus_a_gate(tmp_path):
    patch = change("se_resnet50")
    assert patch.parent == "resnet50"
    assert [(e.kind, e.region, e.before, e.unit, e.after) for e in patch.edits] == \
        [("insert", "residual", SE_GATE, "conv1", "bn")]
    text = _round_trip(patch, archdsl.load("resnet50"), archdsl.load("se_resnet50"), tmp_path)
    assert SE_GATE in text
    assert archdsl.analyze(archdsl.apply("se_resnet50", "resnet50")).params == archdsl.analyze("se_resnet50").params


def test_the_gate_is_removed_as_a_unit(tmp_path):
    se, plain = archdsl.load("se_resnet50"), archdsl.load("resnet50")
    patch = between(se, plain)
    assert [(e.kind, e.before) for e in patch.edits] == [("remove", SE_GATE)]
    _round_trip(patch, se, plain, tmp_path)


def test_a_gate_goes_with_the_unit_it_follows(tmp_path):
    moved = tmp_path / "se_early.arch"  # the gate after the first conv's unit instead of the third's
    moved.write_text("network se_early extends resnet50\n\nblock bottleneck {\n    residual {\n"
                     "        conv1 0.25x, bn, relu\n"
                     "        gate { gap, conv1 0.0625x, relu, conv1 0.25x, sigmoid }\n"
                     "        conv3 0.25x stride, bn, relu\n        conv1, bn\n"
                     "    } shortcut conv1 stride, bn\n    relu\n}\n")
    patch = change(moved)
    assert [e.kind for e in patch.edits] == ["insert"] and patch.edits[0].unit == "conv1 0.25x"
    _round_trip(patch, archdsl.load("resnet50"), archdsl.load(moved), tmp_path)


def test_relu_to_gelu_onto_se_resnet50_leaves_the_gate_alone():
    net = archdsl.apply("step09", "se_resnet50")
    body = format_spec(child_spec(net, archdsl.load("se_resnet50"), "x"), layout=False)
    assert body.count("gelu") == 3 and SE_GATE in body  # the gate is its own unit: its ReLU stays


def test_shortcut_none_is_an_edit(tmp_path):
    spec = tmp_path / "no_projection.arch"
    spec.write_text("network no_projection extends resnet50\n\nblock bottleneck {\n    residual {\n"
                    "        conv1 0.25x, bn, relu\n        conv3 0.25x stride, bn, relu\n        conv1, bn\n"
                    "    } shortcut none\n    relu\n}\n")
    patch = change(spec)
    assert [(e.kind, e.text) for e in patch.edits] == [("shortcut", "none")]
    assert "shortcut none" in _round_trip(patch, archdsl.load("resnet50"), archdsl.load(spec), tmp_path)
    back = between(archdsl.load(spec), archdsl.load("resnet50"))
    assert [(e.kind, e.text) for e in back.edits] == [("shortcut", "conv1 stride, bn")]
    _round_trip(back, archdsl.load(spec), archdsl.load("resnet50"), tmp_path)


def test_per_stage_values_are_kept(tmp_path):
    spec = tmp_path / "mnv2_t4.arch"
    lines = (REPO / "specs/mobilenet_v2.arch").read_text().split("stages {")[1].split("}")[0]
    spec.write_text("network mnv2_t4 extends mobilenet_v2\n\nstages {" + lines.replace("t=6", "t=4") + "}\n")
    patch = change(spec)
    assert [e.kind for e in patch.edits] == ["stages"] and "24 inverted x2 s2 t=4" in patch.edits[0].text
    text = _round_trip(patch, archdsl.load("mobilenet_v2"), archdsl.load(spec), tmp_path)
    assert "t=4" in text and "t=6" not in text


@pytest.mark.parametrize("onto", ["se_resnet50", "mobilenet_v2", "efficientnet_b0", "regnet_y_400mf"])
def test_steps_onto_the_new_constructs_apply_or_say_where(onto):
    for step in ("step03", "step06", "step08", "step09", "step10", "se_resnet50"):
        r = CliRunner().invoke(app, ["apply", step, "--onto", onto], catch_exceptions=False)
        assert "Traceback" not in r.stderr
        if r.exit_code == 0:
            assert f"extends {onto}" in r.stdout
        else:
            assert r.exit_code == 1 and r.stdout == "" and "error[E9" in r.stderr, (step, r.stderr)


def test_a_new_per_stage_value_states_the_block_and_the_stages(tmp_path):
    mnv2 = (REPO / "specs/mobilenet_v2.arch").read_text()
    block = mnv2.split("block inverted(t) {")[1].split("\n}\n")[0].split("\n", 1)[1]
    stages = mnv2.split("stages {")[1].split("}")[0]
    spec = tmp_path / "mnv2_k.arch"
    spec.write_text("network mnv2_k extends mobilenet_v2\n\nblock inverted(t, k) {\n"
                    + block.replace("dwconv3 stride", "dwconvk stride") + "\n}\n\nstages {"
                    + stages.replace("t=6", "t=6 k=5").replace("t=1", "t=1 k=3") + "}\n")
    patch = change(spec)
    assert [e.kind for e in patch.edits] == ["block", "stages"]
    assert all("\n" not in e.describe() for e in patch.edits)  # each edit is one line of `apply`'s note
    text = _round_trip(patch, archdsl.load("mobilenet_v2"), archdsl.load(spec), tmp_path)
    assert "block inverted(t, k) {" in text and "24  inverted x2 s2 t=6 k=5" in text


def test_mobilenet_v2_to_efficientnet_b0_replays(tmp_path):
    a, b = archdsl.load("mobilenet_v2"), archdsl.load("efficientnet_b0")
    patch = between(a, b)
    result, conflicts = apply_patch(patch, a)
    assert not conflicts and not archdsl.diff(result, b)
