"""Feature maps (archdsl.build(features=True)): for every shipped family the maps' shapes are
the spec's stage outputs, and their values are the full model's activations at those places
with the same weights. The full model's activations are read independently of the taps
pass: with forward pre-hooks on the leaf module that reads each stage's output (the next
stage's first op, or the head's), put back into NCHW maps by this test (tokens: the class
token dropped, the rest row by row onto the patch grid, as timm's ViT features do)."""
import re

import pytest
import torch

import archdsl
from archdsl.lang.errors import ArchError

SMALL = {"input": (3, 64, 64)}
FAMILIES = {
    "resnet18": dict(depths=(1, 1, 1, 1)),
    "resnet50": dict(depths=(1, 1, 1, 1)),
    "convnext_t": dict(depths=(1, 1, 2, 1)),
    "convnextv2_atto": dict(depths=(1, 1, 1, 1)),
    "convnext_iso_s": dict(depths=(3,)),
    "mobilenet_v2": {},
    "efficientnet_b0": {},
    "regnet_y_400mf": dict(depths=(1, 1, 1, 1)),
    "swin_t": {"depths": (2, 1, 2, 1), "swin.wattn.kernel": 2},
    "deit_s": dict(depths=(3,)),
}


def _readers(model, net) -> dict[str, str]:
    """Stage (or, with one stage, block) end -> the leaf module whose input it is: the first
    module of the next section in the order the model calls its modules."""
    sections = []
    for name in [n.target for n in model.graph.nodes if n.op == "call_module"]:
        m = re.match(r"(stem|head|downsample\.\d+|stages\.\d+\.blocks\.\d+)", name)
        if m and (not sections or sections[-1][0] != m.group(1)):
            sections.append((m.group(1), name))
    out = {}
    for (sec, _), (_, nxt) in zip(sections, sections[1:]):
        stage = re.match(r"stages\.(\d+)\.blocks\.(\d+)", sec)
        if stage and len(net.stages) > 1:
            out[f"stages.{stage.group(1)}"] = nxt  # the last block's reader wins
        elif stage:
            out[sec] = nxt
    return out


def _as_map(t: torch.Tensor, chw: tuple) -> torch.Tensor:
    c, h, w = chw
    if t.dim() == 3:  # tokens (B, N, C): the class token in front, then the grid row by row
        return t[:, t.shape[1] - h * w:].reshape(t.shape[0], h, w, c).permute(0, 3, 1, 2)
    if tuple(t.shape[1:]) == (c, h, w):
        return t
    assert tuple(t.shape[1:]) == (h, w, c), t.shape
    return t.permute(0, 3, 1, 2)


@pytest.mark.parametrize("spec", FAMILIES)
def test_features_are_the_full_models_activations(spec):
    kw = SMALL | FAMILIES[spec]
    torch.manual_seed(0)
    full = archdsl.build(spec, **kw).eval()
    feats = archdsl.build(spec, features=True, state_dict=full.state_dict(), **kw).eval()
    net = archdsl.as_network(spec, **kw)
    report = archdsl.analyze(spec, **kw)
    readers = _readers(full, net)
    names = feats.feature_info.module_name()
    assert names == list(readers), names
    seen = {}
    hooks = [full.get_submodule(path).register_forward_pre_hook(
        lambda m, args, name=name: seen.__setitem__(name, args[0])) for name, path in readers.items()]
    x = torch.randn(2, *kw["input"])
    with torch.no_grad():
        full(x)
        maps = feats(x)
    for h in hooks:
        h.remove()
    assert len(maps) == len(names)
    stage_shapes = {f"stages.{i}": s.shape for i, s in enumerate(report.stages[1:])}  # [0] is the stem
    for name, got, info in zip(names, maps, feats.feature_info):
        chw = stage_shapes.get(name) or (info["num_chs"], *info["shape"][1:])
        if len(chw) == 2:  # a stage of tokens: the map is on the patch grid
            chw = tuple(info["shape"])
        assert tuple(got.shape) == (2, *chw) == (2, *info["shape"]), (name, got.shape, chw)
        assert info["reduction"] == kw["input"][1] // chw[1]
        torch.testing.assert_close(got, _as_map(seen[name], chw), rtol=1e-4, atol=1e-5)
    # counts stay exact: the head is gone from both the report and the module
    assert archdsl.analyze(spec, features=True, **kw).params == sum(p.numel() for p in feats.parameters())
    head = sum(r.params for r in report.layers if r.group == "head")
    assert sum(p.numel() for p in feats.parameters()) == report.params - head


def test_out_indices_pick_and_negative_count_from_the_end():
    m = archdsl.build("convnext_t", features=True, out_indices=(1, -1), device="meta")
    assert m.feature_info.module_name() == ["stages.1", "stages.3"]
    assert m.feature_info.channels() == [192, 768] and m.feature_info.reduction() == [8, 32]


def test_taps_name_any_place_and_a_full_build_returns_them_beside_the_logits():
    torch.manual_seed(0)
    kw = SMALL | FAMILIES["resnet18"]
    full = archdsl.build("resnet18", **kw).eval()
    both = archdsl.build("resnet18", taps=["stem", "stages.1.blocks.0.conv1", "head.fc"],
                         state_dict=full.state_dict(), **kw).eval()
    x = torch.randn(2, *kw["input"])
    seen = {}
    full.get_submodule("stages.1.blocks.0.conv1").register_forward_hook(lambda m, a, y: seen.setdefault("c", y))
    with torch.no_grad():
        logits, (stem, conv1, fc) = both(x)
        want = full(x)
    torch.testing.assert_close(logits, want)
    torch.testing.assert_close(fc, want)
    torch.testing.assert_close(conv1, seen["c"])
    assert stem.shape == (2, 64, 16, 16)
    assert both.feature_info.module_name() == ["stem", "stages.1.blocks.0.conv1", "head.fc"]


@pytest.mark.parametrize("kw, code, words", [
    (dict(features=True, out_indices=(4,)), "E411", "4 is out of range"),
    (dict(out_indices=(1,)), "E411", "features build"),
    (dict(features=True, taps=["stages.9"]), "E410", "names nothing"),
    (dict(features=True, taps=["head.norm"]), "E412", "not a spatial map"),
    (dict(features="yes"), "E010", "True or False"),
])
def test_bad_taps_are_errors_with_a_place_and_a_hint(kw, code, words):
    with pytest.raises(ArchError) as e:
        archdsl.build("convnext_t", device="meta", **kw)
    assert e.value.code == code and words in e.value.message
    assert e.value.hint and (e.value.span is not None or code == "E010")  # a wrong type is no place in a spec


def test_a_network_with_no_spatial_map_has_no_features():
    mlp = "network mlp\ninput 3x8x8\nclasses 10\nblock fc {\n    linear\n    relu\n}\nstem flatten\nstages {\n    64 fc x2\n}\nhead linear\n"
    with pytest.raises(ArchError) as e:
        archdsl.build(archdsl.loads(mlp), features=True, device="meta")
    assert e.value.code == "E412" and "not a spatial map" in e.value.message


def test_onnx_export_of_a_features_build(tmp_path):
    pytest.importorskip("onnxruntime")
    from archdsl.interop.export_onnx import export_onnx

    model = archdsl.build("convnextv2_atto", features=True, out_indices=(2, 3), **SMALL,
                          depths=(1, 1, 1, 1))
    result = export_onnx(model, SMALL["input"], tmp_path / "f.onnx")
    assert result.outputs == ["feature0", "feature1"] and result.max_abs_diff < 1e-4


def test_python_export_of_a_features_build_computes_the_same_maps():
    from archdsl.interop.export_code import code

    kw = SMALL | FAMILIES["deit_s"]
    text = code("deit_s", features=True, out_indices=(0, 2), **kw)
    ns: dict = {}
    exec(compile(text, "deit_features.py", "exec"), ns)
    exported = ns["build"]().eval()
    model = archdsl.build("deit_s", features=True, out_indices=(0, 2), **kw).eval()
    exported.load_state_dict(model.state_dict())
    x = torch.randn(2, *kw["input"])
    with torch.no_grad():
        for a, b in zip(model(x), exported(x)):
            torch.testing.assert_close(a, b)
    assert "-> list[torch.Tensor]" in text


# ---------------------------------------------------------------- hooks on stages and blocks
def test_hooks_on_a_stage_and_a_block_fire_with_its_input_and_output():
    kw = SMALL | FAMILIES["convnext_t"]
    torch.manual_seed(0)
    model = archdsl.build("convnext_t", **kw).eval()
    feats = archdsl.build("convnext_t", taps=["downsample.1", "stages.1", "stages.2.blocks.0"],
                          state_dict=model.state_dict(), **kw).eval()
    x = torch.randn(2, *kw["input"])
    with torch.no_grad():
        want, (stage_in, stage_out, block_out) = feats(x)
    seen = {}
    stage = model.stages[1]
    assert stage is model.get_submodule("stages.1") and len(model.stages) == 4
    handles = [stage.register_forward_hook(lambda m, args, y: seen.__setitem__("stage", (args[0], y))),
               model.stages[2].blocks[0].register_forward_hook(lambda m, args, y: seen.__setitem__("block", y))]
    with torch.no_grad():
        got = model(x)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(seen["stage"][0], stage_in)
    torch.testing.assert_close(seen["stage"][1], stage_out)
    torch.testing.assert_close(seen["block"], block_out)
    for h in handles:
        h.remove()
    seen.clear()
    model(x)
    assert not seen
    # a hook's returned tensor replaces the output, as in PyTorch
    model.stages[3].register_forward_hook(lambda m, args, y: torch.zeros_like(y))
    with torch.no_grad():
        zeroed = model(x)
    torch.testing.assert_close(zeroed, model.head.fc.bias.expand_as(zeroed))


def test_calling_a_stage_says_what_works_instead():
    model = archdsl.build("resnet18", device="meta")
    with pytest.raises(TypeError, match=r"(?s)`stages.0` cannot be called.*taps=\[\"stages.0\"\]"):
        model.stages[0](torch.empty(1, 64, 56, 56, device="meta"))
    with pytest.raises(TypeError, match="takes no pre-hooks"):
        model.get_submodule("stages.0").register_forward_pre_hook(lambda m, a: None)
    with pytest.raises(IndexError, match="`stages` has no `4`"):
        model.stages[4]


# ---------------------------------------------------------------- fine-tuning at 384
def test_convnext_b_384_states_the_official_fine_tuning_recipe():
    """The official ConvNeXt-B 384x384 fine-tuning command (TRAINING.md, "Finetune from
    ImageNet-1K pre-training"): --input_size 384 --batch_size 32 x 8 GPUs x update_freq 2
    --lr 5e-5 --warmup_epochs 0 --epochs 30 --weight_decay 1e-8 --cutmix 0 --mixup 0
    --drop_path 0.8 --layer_decay 0.7 --head_init_scale 0.001, no --model_ema, main.py's
    default --min_lr 1e-6; the network is ConvNeXt-B's."""
    net = archdsl.load("convnext_b_384")
    r = net.train
    assert net.input == (3, 384, 384)
    assert (r.epochs, r.batch, r.optimizer, r.lr, r.wd, r.schedule, r.warmup, r.min_lr) == (
        30, 512, "adamw", 5e-5, 1e-8, "cosine", 0.0, 1e-6)
    assert (r.mixup, r.cutmix, r.droppath, r.ema) == (0.0, 0.0, 0.8, None)
    assert (r.layer_decay, r.layer_group, r.head_init_scale) == (0.7, 3, 0.001)
    assert archdsl.analyze(net).params == 88_591_464  # ConvNeXt-B (the paper: 89M at 384 too)


def _python_example(page: str, marker: str) -> str:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / page).read_text()
    return next(b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if marker in b)


def test_the_fpn_example_in_the_docs_trains(capsys):
    """docs/backbones.md's ConvNeXt-T + FPN example, run as written (it uses a 64x64 input):
    one step moves the backbone's weights too."""
    ns: dict = {}
    exec(compile(_python_example("docs/backbones.md", "class FPN"), "docs/backbones.md", "exec"), ns)
    printed = capsys.readouterr().out
    assert "maps [(2, 96, 16, 16), (2, 192, 8, 8), (2, 384, 4, 4), (2, 768, 2, 2)]" in printed
    assert torch.isfinite(ns["loss"])
    grads = [p.grad for p in ns["backbone"].parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_the_fpn_example_in_the_readme_trains(capsys):
    """The README's shorter FPN example, run as written: the maps' channels and strides are
    ConvNeXt-T's (the paper's widths, strides 4 to 32), and the step reaches the backbone."""
    ns: dict = {}
    exec(compile(_python_example("README.md", "features=True"), "README.md", "exec"), ns)
    printed = capsys.readouterr().out
    assert printed.startswith("[96, 192, 384, 768] [4, 8, 16, 32] loss ")
    assert torch.isfinite(ns["loss"])
    first = next(ns["backbone"].parameters())
    assert first.grad is not None and first.grad.abs().sum() > 0


@pytest.mark.parametrize("spec", ["resnet18", "deit_s"])
def test_an_eval_build_of_a_backbone_gives_the_same_maps(spec):
    """mode="eval" folds norms and fuses epilogues; the taps stay outputs of the graph."""
    kw = SMALL | FAMILIES[spec]
    torch.manual_seed(0)
    full = archdsl.build(spec, **kw).eval()
    train = archdsl.build(spec, features=True, state_dict=full.state_dict(), **kw).eval()
    fused = archdsl.build(spec, features=True, mode="eval", state_dict=full.state_dict(), **kw)
    x = torch.randn(2, *kw["input"])
    with torch.no_grad():
        for a, b in zip(train(x), fused(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert fused.feature_info == train.feature_info


def test_compile_reports_a_backbones_taps_and_counts():
    import json

    from typer.testing import CliRunner

    from archdsl.cli.main import app

    runner = CliRunner()
    r = runner.invoke(app, ["compile", "resnet18", "--features", "--out-indices", "2,3", "--emit", "json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["params"] == 11_689_512 - (512 * 1000 + 1000)  # torchvision's count less the fc
    assert [(t["module"], t["num_chs"], t["reduction"]) for t in report["taps"]] == [("stages.2", 256, 16),
                                                                                  ("stages.3", 512, 32)]
    r = runner.invoke(app, ["compile", "convnext_t", "--features"])
    assert r.exit_code == 0 and "stages.3 │ 768x7x7" in r.output and "27,818,592 params" in r.output
    r = runner.invoke(app, ["compile", "resnet18", "--features", "--out-indices", "x"])
    assert r.exit_code == 2 and "--out-indices takes integers" in r.output
    r = runner.invoke(app, ["compile", "convnext_t", "--taps", "stages.9"])
    assert r.exit_code == 1 and "E410" in r.output and "Traceback" not in r.output


# ---------------------------------------------------------------- what a newcomer met
def test_a_features_build_refuses_the_head_which_a_full_build_returns():
    """`head` is the logits, no map: a features build (maps only) is E412, as `head.gap` is,
    at the tap when the spec declares it; a full build with taps returns it as it is."""
    with pytest.raises(ArchError) as e:
        archdsl.build("convnext_t", features=True, taps=["stem", "head"], device="meta")
    assert e.value.code == "E412" and "`head` is not a spatial map" in e.value.message
    assert "full build" in e.value.hint and "(logits, [maps])" in e.value.hint and e.value.span is not None
    spec = archdsl.loads("network n extends convnext_t\ntaps stem, head\n", path="n.arch")
    with pytest.raises(ArchError) as e:
        archdsl.build(spec, features=True, device="meta")
    assert e.value.code == "E412" and (e.value.span.path, e.value.line, e.value.column) == ("n.arch", 2, 12)
    with pytest.raises(ArchError):
        archdsl.analyze(spec, features=True)
    # the full build's taps: the logits beside the stem's map, as documented
    model = archdsl.build("convnext_t", taps=["stem", "head"], device="meta")
    logits, (stem, head) = model(torch.empty(2, 3, 224, 224, device="meta"))
    assert head.shape == logits.shape == (2, 1000) and stem.shape == (2, 96, 56, 56)
    assert model.feature_info[1] == {"module": "head", "num_chs": 1000, "reduction": 0, "shape": [1000]}


def test_out_indices_that_repeat_a_map_say_so():
    with pytest.raises(ArchError) as e:
        archdsl.build("convnext_t", features=True, out_indices=(1, 1), device="meta")
    assert e.value.code == "E411" and e.value.message == "out_indices (1, 1) repeats 1"
    assert "give each index once" in e.value.hint and "named" not in e.value.hint
    with pytest.raises(ArchError) as e:
        archdsl.build("convnext_t", features=True, out_indices=(1, -3), device="meta")
    assert e.value.message == "out_indices (1, -3) repeats -3 (1 and -3 are both `stages.1`)"


def test_the_cli_names_its_own_options_for_out_indices():
    """Without --features the API's E411 would say `archdsl.build(spec, features=True, ...)`;
    the CLI says which option to add."""
    from typer.testing import CliRunner

    from archdsl.cli.main import app

    runner = CliRunner()
    r = runner.invoke(app, ["compile", "convnext_t", "--out-indices", "1"])
    assert r.exit_code == 2 and "add --features (`--features --out-indices 1`)" in r.output
    assert "archdsl.build(" not in r.output
    r = runner.invoke(app, ["export", "convnext_t", "--taps", "stem", "--out-indices", "1", "--features",
                            "--to", "never.py"])
    assert r.exit_code == 2 and "give --out-indices or --taps, not both" in r.output
    with pytest.raises(ArchError) as e:  # the API keeps its Python hint
        archdsl.build("convnext_t", out_indices=(1,), device="meta")
    assert "archdsl.build(spec, features=True, out_indices=" in e.value.hint


def test_check_takes_the_tap_options():
    from typer.testing import CliRunner

    from archdsl.cli.main import app

    runner = CliRunner()
    r = runner.invoke(app, ["check", "convnext_t", "--features", "--out-indices", "1,-1"])
    assert r.exit_code == 0, r.output
    assert r.output.strip().endswith("; maps: stages.1 (192x28x28), stages.3 (768x7x7)")
    r = runner.invoke(app, ["check", "convnext_t", "--taps", "stem,head"])
    assert r.exit_code == 0 and r.output.strip().endswith("; taps: stem (96x56x56), head (1000)")
    r = runner.invoke(app, ["check", "convnext_t", "--features", "--taps", "stages.9"])
    assert r.exit_code == 1 and "E410" in r.output and "Traceback" not in r.output


def test_a_tap_deeper_than_its_stage_says_the_depth_and_suggests_the_stages_end():
    spec = archdsl.loads("network n extends convnext_t\ntaps stages.2.blocks.3\n", path="n.arch")
    with pytest.raises(ArchError) as e:
        archdsl.check(spec, depths=(1, 1, 1, 1))
    hint = e.value.hint
    assert e.value.code == "E413" and (e.value.line, e.value.column) == (2, 6)
    assert hint.startswith("did you mean `stages.2` (the stage's end, which follows any depth) or "
                           "`stages.2.blocks.0` (its last block)?")
    assert "`stages.2` has 1 block here (`stages.2.blocks.0` only): its depth is 1" in hint
    assert "--set depths=" in hint and "stages.3" not in hint


def test_onnx_export_of_a_features_build_with_a_dynamic_batch(tmp_path):
    """ONNX fixes the batch at 2 unless --dynamic-batch; then batch 1 and 4 run too."""
    ort = pytest.importorskip("onnxruntime")
    from typer.testing import CliRunner

    from archdsl.cli.main import app

    out = tmp_path / "backbone.onnx"
    r = CliRunner().invoke(app, ["export", "convnextv2_atto", "--features", "--out-indices", "1,3", "--dynamic-batch",
                                 "--set", "input=3x64x64", "--set", "depths=1,1,1,1", "--to", str(out)])
    assert r.exit_code == 0, r.output
    assert "any batch size" in r.output and "output feature0, feature1;" in r.output
    session = ort.InferenceSession(str(out))
    for batch in (1, 4):
        maps = session.run(None, {"x": torch.randn(batch, 3, 64, 64).numpy()})
        assert [m.shape for m in maps] == [(batch, 80, 8, 8), (batch, 320, 2, 2)]


def test_python_export_names_the_returned_maps_after_their_taps():
    """The forward keeps each returned map in a variable named for its tap and its docstrings
    say what it returns (no "1000 classes" for a backbone); the values are the build's (to
    float rounding: the build fuses layer scale into its linear). A tap inside a block exports as a features build's last tap; elsewhere it is
    refused with a message."""
    from archdsl.interop.export_code import ExportError, code

    kw = SMALL | FAMILIES["convnext_t"]
    cases = {("stem", "stages.1", "stages.2.blocks.1"): "return [stem, stages_1, stages_2_blocks_1]",
             ("stages.2.blocks.1.pwconv1",): "return [stages_2_blocks_1_pwconv1]"}
    for taps, returned in cases.items():
        text = code("convnext_t", features=True, taps=list(taps), **kw)
        forward = text[text.index("    def forward(self, x: torch.Tensor) -> list"):]
        assert returned in forward and "shortcut" not in forward
        assert "classes" not in text.split("import torch")[0]
        ns: dict = {}
        exec(compile(text, "backbone.py", "exec"), ns)
        torch.manual_seed(0)
        model = archdsl.build("convnext_t", features=True, taps=list(taps), **kw).eval()
        exported = ns["build"]().eval()
        exported.load_state_dict(model.state_dict())
        x = torch.randn(2, *kw["input"])
        with torch.no_grad():
            for a, b in zip(model(x), exported(x), strict=True):
                torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    assert "stages_2_blocks_1_pwconv1  `stages.2.blocks.1.pwconv1`: (B, 1536, 4, 4), reduction 16" in text
    text = code("convnext_t", features=True, taps=["stem", "stages.1"], **kw)
    assert "    stages_1  `stages.1`: (B, 192, 8, 8), reduction 8" in text
    with pytest.raises(ExportError, match="sits inside the block `stages.2.blocks.1`"):
        code("convnext_t", features=True, taps=["stages.2.blocks.1.pwconv1", "stages.3"], **kw)
    with pytest.raises(ExportError, match="sits inside the block"):
        code("convnext_t", taps=["stages.2.blocks.1.dwconv"], **kw)


def test_a_hook_sees_the_layout_its_section_runs_in_and_taps_give_nchw():
    """docs/backbones.md: ConvNeXt's stem ends in a LayerNorm, so the stem and stages.0 run
    channels-last; each later stage starts at its downsample's conv, NCHW. Taps are NCHW."""
    kw = SMALL | FAMILIES["convnext_t"]
    model = archdsl.build("convnext_t", device="meta", **kw)
    seen = {}
    for name in ("stem", "stages.0", "stages.1", "stages.3"):
        model.get_submodule(name).register_forward_hook(lambda m, a, y, name=name: seen.__setitem__(name, y.shape))
    model(torch.empty(1, *kw["input"], device="meta"))
    assert seen == {"stem": (1, 16, 16, 96), "stages.0": (1, 16, 16, 96), "stages.1": (1, 192, 8, 8),
                    "stages.3": (1, 768, 2, 2)}
    feats = archdsl.build("convnext_t", features=True, taps=["stem", "stages.0", "stages.1"], device="meta", **kw)
    assert [tuple(m.shape) for m in feats(torch.empty(1, *kw["input"], device="meta"))] == [
        (1, 96, 16, 16), (1, 96, 16, 16), (1, 192, 8, 8)]
