"""A spec's own `taps` statement: a features build returns those maps (their values are the
full model's activations there, read independently with forward pre-hooks on the leaf module
that reads each one), `out_indices` index into them, a build's `taps=` replaces them, the
reports list them, children inherit or restate them, and every tool that reads specs keeps
them (fmt, flatten, diff, the language server, spaces, export)."""
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import archdsl
from archdsl.cli.main import app
from archdsl.lang.errors import ArchError

BACKBONE = """network convnext_taps extends convnext_t
input 3x64x64
taps stem, stages.1, stages.2.blocks.5
"""
# The leaf module whose input is each tap's value in the full model, and that value's (C, H, W)
# at 64x64: ConvNeXt-T's stem and stages are 96/192/384/768 wide at strides 4/8/16/32.
READERS = {"stem": ("stages.0.blocks.0.dwconv", (96, 16, 16)),
           "stages.1": ("downsample.2.0", (192, 8, 8)),
           "stages.2.blocks.5": ("stages.2.blocks.6.dwconv", (384, 4, 4))}


@pytest.fixture
def spec(tmp_path) -> Path:
    path = tmp_path / "convnext_taps.arch"
    path.write_text(BACKBONE)
    return path


def _nchw(t: torch.Tensor, chw: tuple) -> torch.Tensor:
    """A value as the graph holds it, NCHW: a channels-last op's input arrives (B, H, W, C)."""
    if tuple(t.shape[1:]) == chw:
        return t
    assert tuple(t.shape[1:]) == (chw[1], chw[2], chw[0]), t.shape
    return t.permute(0, 3, 1, 2)


def test_a_features_build_returns_the_declared_maps_as_the_full_model_computes_them(spec):
    torch.manual_seed(0)
    full = archdsl.build(spec).eval()
    feats = archdsl.build(spec, features=True, state_dict=full.state_dict()).eval()
    assert feats.feature_info.module_name() == list(READERS)
    assert feats.feature_info.channels() == [96, 192, 384] and feats.feature_info.reduction() == [4, 8, 16]
    seen = {}
    for name, (reader, _) in READERS.items():
        full.get_submodule(reader).register_forward_pre_hook(lambda m, args, name=name: seen.setdefault(name, args[0]))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits = full(x)
        maps = feats(x)
    assert logits.shape == (2, 1000) and len(maps) == 3
    for (name, (_, chw)), got in zip(READERS.items(), maps):
        assert tuple(got.shape) == (2, *chw)
        torch.testing.assert_close(got, _nchw(seen[name], chw), rtol=1e-4, atol=1e-5)
    # the build stops at the last tap: stage 2's last three blocks, stage 3 and the head are gone
    assert not any(k.startswith(("stages.3", "head", "stages.2.blocks.6")) for k in feats.state_dict())


def test_out_indices_pick_among_the_declared_taps_and_taps_replace_them(spec):
    m = archdsl.build(spec, features=True, out_indices=(0, -1), device="meta")
    assert m.feature_info.module_name() == ["stem", "stages.2.blocks.5"]
    m = archdsl.build(spec, features=True, taps=["stages.3"], device="meta")
    assert m.feature_info.module_name() == ["stages.3"] and m.feature_info.channels() == [768]
    with pytest.raises(ArchError) as e:
        archdsl.build(spec, features=True, out_indices=(3,), device="meta")
    assert e.value.code == "E411" and "declares 3 taps, indices 0..2" in e.value.message
    assert (e.value.line, e.value.column) == (3, 1)  # the taps statement


def test_a_full_build_returns_the_logits_and_the_reports_list_the_declared_taps(spec):
    model = archdsl.build(spec, device="meta")
    assert model(torch.empty(1, 3, 64, 64, device="meta")).shape == (1, 1000)
    assert not hasattr(model, "feature_info")
    report = archdsl.analyze(spec)
    assert report.params == 28_589_128 and not report.taps_returned  # ConvNeXt-T, its head included
    assert [(t["module"], t["num_chs"], t["reduction"], t["shape"]) for t in report.taps] == [
        ("stem", 96, 4, [96, 16, 16]), ("stages.1", 192, 8, [192, 8, 8]), ("stages.2.blocks.5", 384, 16, [384, 4, 4])]
    _, ir = archdsl.check(spec)
    assert ir.declared_taps.module_name() == list(READERS)
    backbone = archdsl.analyze(spec, features=True)
    assert backbone.taps_returned and backbone.taps == report.taps and backbone.params < report.params


def test_stage_taps_have_the_papers_widths_and_strides():
    net = archdsl.loads("network n extends convnext_t\ntaps stages.0, stages.1, stages.2, stages.3\n")
    m = archdsl.build(net, features=True, device="meta")
    assert m.feature_info.channels() == [96, 192, 384, 768] and m.feature_info.reduction() == [4, 8, 16, 32]
    assert [tuple(s) for s in (d["shape"] for d in m.feature_info)] == [(96, 56, 56), (192, 28, 28), (384, 14, 14),
                                                                     (768, 7, 7)]


def test_a_child_inherits_the_taps_and_restating_them_replaces_them(spec, tmp_path):
    (tmp_path / "child.arch").write_text("network child extends convnext_taps\nclasses 10\n")
    (tmp_path / "other.arch").write_text("network other extends convnext_taps\ntaps stages.3\n")
    assert [w.text for w in archdsl.load(tmp_path / "child.arch").taps] == list(READERS)
    assert [w.text for w in archdsl.load(tmp_path / "other.arch").taps] == ["stages.3"]
    # an inherited tap that the child's change leaves pointing nowhere: E413 at the parent's line
    (tmp_path / "shallow.arch").write_text("network shallow extends convnext_taps\nset depths 3,3,4,3\n")
    with pytest.raises(ArchError) as e:
        archdsl.check(tmp_path / "shallow.arch")
    err = e.value
    assert err.code == "E413" and err.span.path == str(spec) and (err.line, err.column) == (3, 22)
    assert "`stages.2` has 4 blocks here (`stages.2.blocks.0`..`stages.2.blocks.3`)" in err.hint
    assert "shallow inherits these taps" in err.hint and "restate `taps` in shallow" in err.hint
    # `set taps` is no override: the statement is restated instead
    (tmp_path / "setter.arch").write_text("network setter extends convnext_taps\nset taps stages.3\n")
    with pytest.raises(ArchError) as e:
        archdsl.load(tmp_path / "setter.arch")
    assert e.value.code == "E501" and "restate it" in e.value.hint and e.value.line == 2


def test_errors_point_at_the_tap_with_a_caret_and_the_places_there_are():
    text = "network n extends convnext_t\ntaps stem, stages.9,\n     stages.1, stem\n"
    with pytest.raises(ArchError) as e:
        archdsl.check(archdsl.loads(text, path="n.arch"))
    nothing, twice = e.value.errors
    assert nothing.code == twice.code == "E413"
    assert nothing.render().split("\n") == [
        "n.arch:2:12: error[E413]: the tap `stages.9` names nothing in n",
        " 2 | taps stem, stages.9,",
        "   |            ^^^^^^^^",
        "help: did you mean `stages.3` or `stages.2`? taps are `stem`, `stages.0`..`stages.3`, `stages.I.blocks.J`, "
        "`downsample.I`, `head`, or an op's module path (`archdsl compile SPEC --emit layers` lists them)"]
    assert (twice.line, twice.column) == (3, 16) and "named twice" in twice.message and "line 2" in twice.hint


def test_a_tap_on_a_network_without_maps_is_listed_and_refused_by_a_features_build():
    """As the `taps=` argument: a vector is listed as it is; a features build wants maps (E412)."""
    mlp = archdsl.loads("network mlp\ninput 3x8x8\nclasses 10\nblock fc {\n    linear 32\n    relu\n}\n"
                        "stem flatten\nstages {\n    32 fc x2\n}\nhead linear\ntaps stages.0\n")
    assert archdsl.analyze(mlp).taps == [{"module": "stages.0", "num_chs": 32, "reduction": 0, "shape": [32]}]
    with pytest.raises(ArchError) as e:
        archdsl.build(mlp, features=True, device="meta")
    assert e.value.code == "E412" and "not a spatial map" in e.value.message


def test_fmt_flatten_and_diff_keep_the_taps(spec):
    from archdsl.lang.flatten import flatten
    from archdsl.lang.parser import parse
    from archdsl.lang.printer import format_spec, same

    text = "network n extends convnext_t  # note\ntaps   stem,\n  stages.1   # the second\nclasses 10\n"
    once = format_spec(parse(text, "n.arch"))
    assert once == "network n extends convnext_t  # note\nclasses 10\ntaps   stem, stages.1  # the second\n"
    assert same(parse(once, "m.arch"), parse(text, "n.arch")) and format_spec(parse(once, "m.arch")) == once
    flat = format_spec(flatten(archdsl.load(spec)), layout=False)
    assert "\ntaps       stem, stages.1, stages.2.blocks.5\n" in flat
    assert [w.text for w in archdsl.loads(flat).taps] == list(READERS)
    d = archdsl.diff("convnext_t", spec, input="3x64x64")
    assert [(c.section, c.before, c.after) for c in d.changes] == [("taps", "none", "stem, stages.1, stages.2.blocks.5")]
    assert d.summary() == "taps none -> stem, stages.1, stages.2.blocks.5"
    assert "taps        stem, stages.1, stages.2.blocks.5" in repr(archdsl.load(spec))


def test_taps_are_no_part_of_the_networks_structure(spec):
    """A run trained before its spec declared taps resumes and evaluates with it: the structure
    a checkpoint records (`canonical`) is the same."""
    from archdsl.lang.network import canonical

    assert canonical(archdsl.load(spec)) == canonical(archdsl.load("convnext_t", input="3x64x64"))


def test_a_point_of_a_space_keeps_its_taps():
    space = ("network s extends convnext_t\nlet {\n    k = choice(3, 7)\n}\nblock convnext {\n    residual {\n"
             "        dwconv{k}, ln\n        pwconv 4x, gelu\n        pwconv 1x\n    }\n}\ntaps stages.1, stages.2\n")
    net = archdsl.loads(space, k=3)
    assert [w.text for w in net.taps] == ["stages.1", "stages.2"] and net.values["k"] == 3
    assert archdsl.build(net, features=True, device="meta").feature_info.channels() == [192, 384]


def test_the_cli_lists_the_declared_taps_and_exports_the_backbone(spec, tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["compile", str(spec)])
    assert r.exit_code == 0, r.output
    assert "taps the spec declares (`--features` builds the backbone that returns them):" in r.output
    assert "stages.2.blocks.5 │ 384x4x4" in r.output and "28,589,128 params" in r.output
    r = runner.invoke(app, ["compile", str(spec), "--features", "--emit", "json"])
    report = json.loads(r.output)
    assert report["taps_returned"] and [t["module"] for t in report["taps"]] == list(READERS)
    r = runner.invoke(app, ["export", str(spec), "--features", "--to", str(tmp_path / "bb.py")])
    assert r.exit_code == 0, r.output
    ns: dict = {}
    exec(compile((tmp_path / "bb.py").read_text(), "bb.py", "exec"), ns)
    torch.manual_seed(0)
    model = archdsl.build(spec, features=True).eval()
    exported = ns["build"]().eval()
    exported.load_state_dict(model.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(model(x), exported(x)):
            torch.testing.assert_close(a, b)


def test_onnx_export_of_a_spec_with_taps(spec, tmp_path):
    pytest.importorskip("onnxruntime")
    r = CliRunner().invoke(app, ["export", str(spec), "--features", "--to", str(tmp_path / "bb.onnx")])
    assert r.exit_code == 0, r.output
    assert "output feature0, feature1, feature2;" in r.output


def test_the_language_server_completes_tap_names_and_marks_a_wrong_one():
    from archdsl.lsp.analysis import analyze, completions, diagnostics

    typing = analyze("network n extends convnext_t\ninput 3x64x64\ntaps stem, \n", "/tmp/n.arch")
    items = {i.label: i.detail for i in completions(typing, (2, 11))}
    assert items["stages.1"] == "192x8x8" and items["stages.2.blocks.5"] == "384x4x4" and "stem" not in items
    wrong = analyze("network n extends convnext_t\ntaps stages.7\n", "/tmp/n.arch")
    (d,) = diagnostics(wrong)
    assert d.code == "E413" and d.range == ((1, 5), (1, 13))


def test_the_shipped_retinanet_backbone_returns_c3_to_c5():
    """specs/resnet50_retinanet.arch: torchvision's retinanet_resnet50_fpn reads layer2-layer4 of
    ResNet-50 (512, 1024, 2048 channels at strides 8, 16, 32); the classifier is ResNet-50's."""
    m = archdsl.build("resnet50_retinanet", features=True, device="meta")
    assert m.feature_info.module_name() == ["stages.1", "stages.2", "stages.3"]
    assert m.feature_info.channels() == [512, 1024, 2048] and m.feature_info.reduction() == [8, 16, 32]
    assert archdsl.analyze("resnet50_retinanet").params == 25_557_032
