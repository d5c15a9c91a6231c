"""The roadmap steps against Table 10 of the paper, each step's diff against the change the
paper describes, and `archdsl roadmap` (table, JSON, plot). Analysis only: nothing is built."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import archdsl
from archdsl.cli import app
from archdsl.diff.render import summary
from archdsl.roadmap.paper import TABLE10, paper_row, row_id
from archdsl.roadmap import SUMMARY_PHRASES, Roadmap, order, roadmap_rows
from archdsl.roadmap.chain import DEFAULT_DIR

# GMACs at 224x224 from the issue: Table 10, except rows 12 (a norm swap adds no MACs) and 13
# (the paper's 4.49 adds fvcore's LayerNorm FLOPs to 4.46 GMACs).
GMACS = {"step00": 4.09, "step01": 4.09, "step02": 4.53, "step03": 4.42, "step04": 2.35, "step05": 5.27,
         "step06": 4.64, "step07": 4.07, "step08": 4.15, "step08_k5": 4.10, "step08_k9": 4.21,
         "step08_k11": 4.29, "step09": 4.15, "step10": 4.15, "step11": 4.15, "step12": 4.15, "step13": 4.46}
MAIN = [f"step{i:02d}" for i in range(14)]


@pytest.fixture(scope="module")
def all_rows():
    return roadmap_rows()


@pytest.fixture(scope="module")
def rows(all_rows):
    return [r for r in all_rows if not r.reference]  # the steps; Swin-T follows as a reference


def test_swin_t_is_the_reference_row_at_the_end(all_rows):
    swin = all_rows[-1]
    assert swin.reference and swin.step == "swin_t" and sum(r.reference for r in all_rows) == 1
    report = archdsl.analyze("swin_t")
    assert (swin.params, swin.macs) == (report.params, report.macs) == (28_288_354, report.macs)
    assert (swin.paper_top1, swin.paper_gflops) == (81.3, 4.5)
    assert swin.d_params == swin.params - archdsl.analyze("convnext_t").params
    assert swin.change.startswith("reference: vs step13_downsample") and "wattn7" in swin.change
    assert not any(r.reference for r in roadmap_rows(DEFAULT_DIR))  # a directory given: steps only


@pytest.fixture(scope="module")
def diffs():
    """Each step against the one it extends."""
    pairs = list(zip(MAIN, MAIN[1:])) + [("step08", f"step08_k{k}") for k in (5, 9, 11)]
    return {b: archdsl.diff(a, b) for a, b in pairs}


def changes(d, section=None, kind=None):
    return [c for c in d.changes if (section is None or c.section == section) and (kind is None or c.kind == kind)]


@pytest.mark.parametrize("step", sorted(GMACS))
def test_macs_match_table_10(step):
    assert abs(archdsl.analyze(step).macs / 1e9 - GMACS[step]) <= 0.01


@pytest.mark.parametrize("step", sorted(GMACS))
def test_paper_flops_agree_with_macs_except_rows_12_and_13(step):
    row = paper_row(archdsl.load(step).name)
    differs = abs(row.gflops - GMACS[step]) > 0.01
    assert differs == (row.row in ("12", "13"))
    assert (row.note is not None) == differs


def test_each_step_extends_the_previous_one():
    nets = {s: archdsl.load(s) for s in GMACS}
    assert nets["step00"].chain[0] == "resnet50"
    for a, b in zip(MAIN, MAIN[1:]):
        assert nets[b].chain[0] == nets[a].name
    for k in (5, 9, 11):
        assert nets[f"step08_k{k}"].chain[0] == nets["step08"].name


def test_step00_is_resnet50():
    assert not archdsl.diff("resnet50", "step00")


def test_step13_is_convnext_t():
    d = archdsl.diff("step13", "convnext_t")
    assert not d, str(d)
    assert d.model.cost_before == d.model.cost_after


def test_consecutive_diffs_are_not_empty(diffs):
    assert all(diffs.values())


def test_step01_changes_only_the_recipe(diffs):
    d = diffs["step01"]
    assert {c.section for c in d.changes} == {"train"}
    fields = {c.what: (c.before, c.after) for c in d.changes}
    assert fields["optimizer"] == ("sgd", "adamw")
    assert fields["epochs"] == ("90", "300")
    assert fields["schedule"] == ("step", "cosine")


def test_step02_stage_ratio(diffs):
    (c,) = diffs["step02"].changes
    assert (c.section, c.what, c.before, c.after) == ("stages", "depths", "3,4,6,3", "3,3,9,3")


def test_step03_patchify_stem(diffs):
    d = diffs["step03"]
    assert {c.section for c in d.changes} == {"stem"}
    (conv,) = changes(d, "stem", "changed")
    assert (conv.before, conv.after) == ("conv7 s2 64", "conv4 s4 64")
    assert "kernel 7 -> 4" in conv.details and "stride 2 -> 4" in conv.details
    assert {c.before for c in changes(d, "stem", "removed")} == {"relu", "maxpool3 s2"}


def test_step04_depthwise_groups(diffs):
    (c,) = diffs["step04"].changes
    assert (c.section, c.kind, c.what) == ("blocks", "changed", "dwconv")
    assert "bottleneck" in c.where and "residual" in c.where
    assert any(d.startswith("groups 1 -> 64,128,256,512") and "depthwise" in d for d in c.details)


def test_step05_widths(diffs):
    d = diffs["step05"]
    (widths,) = [c for c in changes(d, "stages") if c.what == "widths"]
    assert (widths.before, widths.after) == ("256,512,1024,2048", "384,768,1536,3072")
    (stem,) = changes(d, "stem")
    assert "width 64 -> 96" in stem.details
    assert not changes(d, "blocks")  # the block is written relative to the stage width


def test_step06_inverted_bottleneck(diffs):
    d = diffs["step06"]
    (widths,) = changes(d, "stages")
    assert (widths.what, widths.after) == ("widths", "96,192,384,768")
    (renamed,) = changes(d, "blocks", "renamed")
    assert (renamed.before, renamed.after, renamed.where) == ("bottleneck", "invbottleneck", "stages 1-4")
    (expand,) = changes(d, "blocks", "changed")
    assert (expand.before, expand.after) == ("conv1 0.25x", "pwconv 4x")  # compared as the block of stages 1-4


def test_step07_moves_the_dwconv_up(diffs):
    (c,) = diffs["step07"].changes
    assert (c.kind, c.what) == ("moved", "dwconv")
    assert c.position == "ahead of `pwconv 4x`"
    assert "invbottleneck" in c.where
    assert "moved ahead of `pwconv 4x`" in str(diffs["step07"])


@pytest.mark.parametrize("step, kernels", [("step08", (3, 7)), ("step08_k5", (7, 5)), ("step08_k9", (7, 9)),
                                           ("step08_k11", (7, 11))])
def test_step08_kernel_size(diffs, step, kernels):
    (c,) = diffs[step].changes
    assert c.what == "dwconv" and f"kernel {kernels[0]} -> {kernels[1]}" in c.details


def test_step09_relu_to_gelu(diffs):
    cs = diffs["step09"].changes
    assert len(cs) == 3 and all((c.kind, c.before, c.after) == ("changed", "relu", "gelu") for c in cs)
    assert summary(diffs["step09"].model) == "relu -> gelu x3"


def _ops(step, op):
    return [r.path for r in archdsl.analyze(step).layers if r.op == op and r.path.startswith("stages.0.blocks.1.")]


def test_step10_one_activation_per_block(diffs):
    cs = diffs["step10"].changes
    assert [c.before for c in cs] == ["gelu", "gelu"] and all(c.kind == "removed" for c in cs)
    assert any(c.position == "after the residual add" for c in cs)
    assert len(_ops("step10", "gelu")) == 1


def test_step11_one_norm_after_the_dwconv(diffs):
    cs = diffs["step11"].changes
    assert all((c.kind, c.before) == ("removed", "bn") for c in cs) and len(cs) == 2
    assert _ops("step11", "bn") == ["stages.0.blocks.1.bn"]
    layers = [r.op for r in archdsl.analyze("step11").layers if r.path.startswith("stages.0.blocks.1.")]
    assert layers.index("bn") == layers.index("dwconv") + 1


def test_step12_bn_to_ln_everywhere(diffs):
    cs = diffs["step12"].changes
    assert {(c.before, c.after) for c in cs} == {("bn", "ln")}
    assert {c.section for c in cs} == {"stem", "blocks"}
    assert not [r for r in archdsl.analyze("step12").layers if r.op == "bn"]


def test_step13_separate_downsampling(diffs):
    d = diffs["step13"]
    (down,) = changes(d, "downsample", "added")
    assert down.after == "ln, conv2 s2"
    (strides,) = changes(d, "stages")
    assert (strides.what, strides.before, strides.after) == ("strides", "1,2,2,2", "1,1,1,1")
    (shortcut,) = changes(d, "blocks", "removed")
    assert shortcut.where.endswith("shortcut") and shortcut.before == "conv1 stride, ln"
    added = {c.after for c in changes(d, "blocks", "added")}
    assert added == {"layerscale 1e-6", "droppath"}
    assert changes(d, "init")[0].after == "trunc_normal 0.02"


def test_rows_follow_the_chain(rows):
    names = [r.step for r in rows]
    assert [row_id(n) for n in names] == ["00", "01", "02", "03", "04", "05", "06", "07", "08", "08-k5", "08-k9",
                                          "08-k11", "09", "10", "11", "12", "13"]
    assert [r.step for r in rows if r.branch] == ["step08_k5", "step08_k9", "step08_k11"]
    assert all(r.parent == "step08_kernel7" for r in rows if r.branch)
    assert {r.paper_row for r in rows} == {p.row for p in TABLE10}


def test_row_change_comes_from_the_diff(rows):
    for prev, row in zip(rows, rows[1:]):
        parent = next(r for r in rows if r.step == row.parent)
        d = archdsl.diff(parent.step, row.step)
        assert row.change == summary(d.model, SUMMARY_PHRASES)
        assert row.d_macs == row.macs - parent.macs and row.d_params == row.params - parent.params
    assert rows[0].change == "= resnet50"


def test_rows_take_more_columns(rows):
    """How a trainer adds its numbers: fill `metrics`, and the table grows a column."""
    from rich.console import Console

    from archdsl.roadmap.render import roadmap_table

    measured = [r.model_copy(update={"metrics": {"digits top-1": 90.0 + i}}) for i, r in enumerate(rows[:3])]
    console = Console(width=250, record=True, color_system=None)
    console.print(roadmap_table(measured))
    text = console.export_text()
    assert "digits top-1" in text and "92.00" in text


def test_order_puts_branches_after_their_step():
    parents = {"a": None, "b": "a", "c": "b", "v1": "b", "v2": "b", "d": "c"}
    assert order(parents) == [("a", False), ("b", False), ("v1", True), ("v2", True), ("c", False), ("d", False)]


def test_roadmap_of_another_directory(tmp_path):
    (tmp_path / "s0.arch").write_text("network s0 extends resnet50\nclasses 10\n")
    (tmp_path / "s1.arch").write_text("network s1 extends s0\nstem conv4 s4 64, bn\n")
    rows = roadmap_rows(tmp_path)
    assert [r.step for r in rows] == ["s0", "s1"]
    assert rows[0].change == "classes 1000 -> 10"
    assert rows[1].change.startswith("stem conv7 s2 64 -> conv4 s4 64")
    assert rows[1].paper_top1 is None


runner = CliRunner()


def test_cli_table_names_every_step_and_notes_the_flops(rows):
    result = runner.invoke(app, ["roadmap"])
    assert result.exit_code == 0, result.output
    for r in rows:
        assert r.step in result.output
    assert "depths 3,4,6,3 -> 3,3,9,3" in result.output
    assert "* step12_ln: paper 4.46 GFLOPs vs 4.15 GMACs" in result.output
    assert "* step13_downsample: paper 4.49 GFLOPs vs 4.46 GMACs" in result.output
    assert "\x1b[" not in result.output  # not a terminal: plain


def test_cli_json_round_trips(all_rows):
    result = runner.invoke(app, ["roadmap", "--json"])
    assert result.exit_code == 0, result.output
    rm = Roadmap.model_validate_json(result.output)
    assert rm.rows == all_rows
    assert json.loads(rm.model_dump_json()) == json.loads(result.output)


def test_cli_plot_writes_a_png(tmp_path):
    import matplotlib.image

    path = tmp_path / "out" / "roadmap.png"
    result = runner.invoke(app, ["roadmap", "--plot", str(path)])
    assert result.exit_code == 0, result.output
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 400 and image.shape[1] > 800


def test_cli_unknown_directory():
    result = runner.invoke(app, ["roadmap", "no/such/dir"])
    assert result.exit_code == 1
