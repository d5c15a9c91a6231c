"""The semantic diff: it compares resolved networks (not text), names changes by where they
sit, reports costs, round-trips through its JSON schema, and reports bad input cleanly."""
from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

import archdsl
from archdsl.cli import app
from archdsl.diff import Diff
from archdsl.diff.model import Change, DiffModel

NET = """
network tiny
input   3x32x32
classes 10

block mb {
    residual {
        pwconv 4x, bn, relu
        dwconv3 stride, bn, relu
        pwconv 1x, bn
    } shortcut conv1 stride, bn
}

stem   conv3 s2 16, bn, relu
stages {
    16 mb x1
    32 mb x2 s2
}
head   gap, linear
"""


def tiny(*edits: tuple[str, str]) -> archdsl.Network:
    """NET with each (old, new) text replaced."""
    text = NET
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    return archdsl.loads(text)


def test_a_network_against_itself_is_no_difference():
    d = archdsl.diff("convnext_t", "convnext_t")
    assert not d and d.changes == ()
    assert "no difference" in str(d)


def test_diff_is_exported():
    assert archdsl.diff is not None and isinstance(archdsl.diff("resnet50", "resnet50"), Diff)


def test_text_that_means_the_same_is_no_difference():
    same = NET.replace("stem   conv3 s2 16, bn, relu", "stem conv3 s2, bn, relu   # 16: the first stage's width")
    same = same.replace("pwconv 1x, bn", "conv1, bn").replace("head   gap, linear", "head gap, linear 10")
    same = same.replace("classes 10\n", "") + "classes 10\n"  # order of sections
    assert not archdsl.diff(tiny(), archdsl.loads(same))


def test_one_kernel_changed_is_one_change():
    d = archdsl.diff(tiny(), tiny(("dwconv3 stride", "dwconv5 stride")))
    (c,) = d.changes
    assert (c.section, c.kind, c.where, c.what) == ("blocks", "changed", "block `mb`, residual branch", "dwconv")
    assert c.details == ("kernel 3 -> 5",)


def test_widths_are_compared_resolved():
    d = archdsl.diff(tiny(), tiny(("pwconv 4x", "pwconv 3x")))
    (c,) = d.changes
    assert c.details == ("width 4x -> 3x: 64,128 -> 48,96 channels",)


def test_swapped_ops_are_a_move():
    swapped = tiny(("pwconv 4x, bn, relu\n        dwconv3 stride, bn, relu",
                    "dwconv3 stride, bn, relu\n        pwconv 4x, bn, relu"))
    (c,) = archdsl.diff(tiny(), swapped).changes
    assert (c.kind, c.what, c.position) == ("moved", "dwconv", "ahead of `pwconv 4x`")
    assert c.after == "dwconv3 stride, bn, relu"
    assert "it now sees 16,32 channels, not 64,128" in c.details


def test_added_and_removed_ops_name_their_place():
    d = archdsl.diff(tiny(), tiny(("pwconv 1x, bn", "pwconv 1x, bn, layerscale 1e-6")))
    (c,) = d.changes
    assert (c.kind, c.after, c.position) == ("added", "layerscale 1e-6", "after `pwconv 1x, bn`")
    d = archdsl.diff(tiny(), tiny(("stem   conv3 s2 16, bn, relu", "stem   conv3 s2 16, bn")))
    (c,) = d.changes
    assert (c.section, c.kind, c.before, c.position) == ("stem", "removed", "relu", "after `conv3 s2 16, bn`")


def test_a_renamed_block_is_compared_as_the_block_of_its_stages():
    renamed = NET.replace("block mb", "block inv").replace("mb x", "inv x")
    renamed = renamed.replace("dwconv3 stride", "dwconv7 stride")
    d = archdsl.diff(tiny(), archdsl.loads(renamed))
    kinds = [(c.kind, c.what) for c in d.changes]
    assert kinds == [("renamed", "block"), ("changed", "dwconv")]
    assert d.changes[0].where == "stages 1-2" and d.changes[1].where == "block `inv`, residual branch"


def test_stage_changes():
    d = archdsl.diff(tiny(), tiny(("32 mb x2 s2", "48 mb x3 s2\n    64 mb x1 s2")))
    got = {c.what: (c.before, c.after) for c in d.changes}
    assert got == {"stages": ("2", "3"), "depths": ("1,2", "1,3,1"), "widths": ("16,32", "16,48,64"),
                   "strides": ("1,2", "1,2,2")}


def test_sections_and_recipe():
    other = tiny(("head   gap, linear", "head   gap, ln, linear"))
    text = NET + "init trunc_normal 0.02\ntrain {\n    epochs 5\n}\ndownsample ln\n"
    d = archdsl.diff(tiny(), archdsl.loads(text))
    assert {(c.section, c.kind) for c in d.changes} == {("init", "changed"), ("train", "changed"),
                                                         ("downsample", "added")}
    assert archdsl.diff(tiny(), other).changes[0].section == "head"


def test_cost_before_after_and_deltas():
    d = archdsl.diff("step07", "step08")
    a, b = archdsl.analyze("step07"), archdsl.analyze("step08")
    assert (d.model.cost_before.macs, d.model.cost_after.macs) == (a.macs, b.macs)
    assert (d.model.cost_before.params, d.model.cost_after.params) == (a.params, b.params)
    assert d.model.cost_after.peak_activation == b.peak_activation
    text = str(d)
    assert f"{b.params - a.params:+,}" in text and f"{(b.macs - a.macs) / 1e9:+.3f} G" in text


def test_overrides_apply_to_both_sides():
    d = archdsl.diff("step07", "step08", input="3x64x64", classes=10)
    assert d.model.cost_after.macs == archdsl.analyze("step08", input="3x64x64", classes=10).macs
    assert [c.what for c in d.changes] == ["dwconv"]


def test_json_round_trips_through_the_schema():
    d = archdsl.diff("resnet50", "convnext_t")
    again = Diff.from_json(d.to_json())
    assert again == d and str(again) == str(d)
    assert DiffModel.model_validate_json(d.to_json()) == d.model
    schema = DiffModel.model_json_schema()
    assert set(schema["required"]) == {"before", "after", "cost_before", "cost_after"}
    kinds = schema["$defs"]["Change"]["properties"]["kind"]["enum"]
    assert set(kinds) == {"added", "removed", "changed", "moved", "renamed"}
    with pytest.raises(ValueError):
        Change.model_validate({"section": "nowhere", "kind": "added", "where": "", "what": "x"})


def test_resnet50_to_convnext_t_reads_like_the_paper():
    d = archdsl.diff("resnet50", "convnext_t")
    sections = [c.section for c in d.changes]
    assert sections == sorted(sections, key=["input", "classes", "stem", "stages", "blocks", "downsample",
                                              "head", "init", "train"].index)
    dw = next(c for c in d.changes if c.what == "dwconv")
    assert dw.before == "conv3 0.25x stride" and dw.position == "and moved ahead of `pwconv 4x`"
    assert "kernel 3 -> 7" in dw.details


runner = CliRunner()


def test_cli_prints_what_str_prints():
    result = runner.invoke(app, ["diff", "step05", "step06"])
    assert result.exit_code == 0, result.output
    assert result.output == str(archdsl.diff("step05", "step06"))
    assert "\x1b[" not in result.output
    assert "block `bottleneck` -> `invbottleneck`" in result.output


def test_cli_json():
    result = runner.invoke(app, ["diff", "step07", "step08", "--json"])
    assert result.exit_code == 0
    assert DiffModel.model_validate_json(result.output) == archdsl.diff("step07", "step08").model


def test_cli_set():
    result = runner.invoke(app, ["diff", "step07", "step08", "--set", "input=3x64x64", "--json"])
    model = DiffModel.model_validate_json(result.output)
    assert model.cost_after.macs == archdsl.analyze("step08", input="3x64x64").macs


def test_cli_step13_equals_convnext_t():
    result = runner.invoke(app, ["diff", "step13", "convnext_t"])
    assert result.exit_code == 0 and "no difference" in result.output


def test_cli_reports_a_spec_that_does_not_compile(tmp_path):
    bad = tmp_path / "bad.arch"
    bad.write_text("network bad extends step07\n\nstages {\n    96 invbottleneck x3\n    192 invbotleneck x3 s2\n}\n")
    worse = tmp_path / "worse.arch"
    worse.write_text("network worse extends step05\nstem conv4 s4 96, bn, reluu\n")
    result = runner.invoke(app, ["diff", str(bad), str(worse)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    # both specs' errors, each at file:line:col
    assert re.search(r"bad\.arch:5:9: error\[E203\]: unknown block `invbotleneck`", result.output)
    assert re.search(r"worse\.arch:2:\d+: error\[E301\]: unknown op `reluu`", result.output)


def test_cli_unknown_step_lists_the_steps():
    result = runner.invoke(app, ["diff", "step99", "step05"])
    assert result.exit_code == 1
    assert "unknown spec `step99`" in result.output
    for step in ("step00_resnet50", "step08_k11", "step13_downsample"):
        assert step in result.output


def test_step_names_resolve():
    assert archdsl.load("step08").name == "step08_kernel7"
    assert archdsl.load("step08_k9").name == "step08_k9"
    with pytest.raises(archdsl.ArchError, match="step99"):
        archdsl.load("step99")
