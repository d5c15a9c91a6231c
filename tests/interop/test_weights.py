"""`load_weights`: strictness (every bad key named at once), reshapes, and the layout rules."""
from __future__ import annotations

import pytest
import torch

import archdsl
from archdsl.lang.errors import ArchError, WeightsError
from archdsl.interop.weights import LAYOUTS, Rule, load_weights, native_name
from reference_convnets import ConvNeXtV2, MobileNetV2, SEResNet50
from reference_joins import CoAtNet, DenseNet, Mixer, PoolFormer
from reference_models import ConvNeXt, randomize_, resnet50
from test_reference_parity import official_to_timm, official_to_torchvision

ATTO = dict(depths=(2, 2, 6, 2), dims=(40, 80, 160, 320))


@pytest.fixture(scope="module")
def atto_official() -> dict[str, torch.Tensor]:
    return randomize_(ConvNeXt(**ATTO), seed=5).state_dict()


@pytest.fixture(scope="module")
def resnet_torchvision() -> dict[str, torch.Tensor]:
    return resnet50().state_dict()


def build_atto() -> torch.nn.Module:
    return archdsl.build("convnext_atto")


def test_error_names_every_missing_unexpected_and_misshaped_key(atto_official):
    sd = dict(atto_official)
    del sd["stages.2.4.pwconv1.bias"], sd["downsample_layers.3.1.weight"]
    sd["stages.2.4.pwconv3.weight"] = torch.zeros(3)  # no rule maps it
    sd["stages.5.0.dwconv.weight"] = torch.zeros(3)  # maps to a key the model lacks
    sd["stages.1.0.dwconv.weight"] = torch.zeros(80, 1, 5, 5)  # wrong kernel
    sd["head.weight"] = sd["head.weight"].t()  # same numel, transposed: not a reshape
    model = build_atto()
    before = {k: v.clone() for k, v in model.state_dict().items()}

    with pytest.raises(WeightsError) as info:
        load_weights(model, sd, layout="official")

    error = info.value
    assert isinstance(error, ArchError) and error.code == "E800"
    assert sorted(error.missing) == ["downsample.3.1.weight", "stages.2.blocks.4.pwconv1.bias"]
    assert sorted(error.unexpected) == ["stages.2.4.pwconv3.weight", "stages.5.0.dwconv.weight"]
    assert sorted(error.misshaped) == ["head.weight", "stages.1.0.dwconv.weight"]
    message = str(error)
    for key in ["downsample.3.1.weight", "stages.2.blocks.4.pwconv1.bias",
                "stages.2.4.pwconv3.weight", "stages.5.0.dwconv.weight",
                "stages.1.0.dwconv.weight", "[80, 1, 5, 5]", "[80, 1, 7, 7]",
                "head.weight", "[320, 1000]", "[1000, 320]"]:
        assert key in message
    assert "2 missing, 2 unexpected, 2 mis-shaped" in message
    # nothing was loaded: a failed load leaves the model as it was
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_two_keys_for_one_parameter(atto_official):
    sd = dict(atto_official)
    sd["stages.01.0.dwconv.weight"] = sd["stages.1.0.dwconv.weight"]  # index 01 is index 1
    with pytest.raises(WeightsError, match="already given by `stages.1.0.dwconv.weight`") as info:
        load_weights(build_atto(), sd, layout="official")
    assert info.value.unexpected == ["stages.01.0.dwconv.weight"]


def test_wrong_layout_gets_a_hint(atto_official):
    with pytest.raises(WeightsError) as info:
        load_weights(build_atto(), official_to_torchvision(atto_official), layout="official")
    assert "torchvision" in info.value.hint
    assert "torchvision" in info.value.render()


def test_unknown_layout():
    with pytest.raises(WeightsError, match="unknown weights layout `timmm`") as info:
        load_weights(build_atto(), {}, layout="timmm")
    assert "`timm`" in info.value.hint


def test_reshapes_only_across_size_one_axes(atto_official):
    # Linear [out, in] <- 1x1 conv [out, in, 1, 1] and layer scale [C] <- [C, 1, 1]
    timm = official_to_timm(atto_official, conv_mlp=True)
    assert timm["stages.0.blocks.0.mlp.fc1.weight"].shape == (160, 40, 1, 1)
    model = load_weights(build_atto(), timm, layout="timm")
    own = model.state_dict()
    assert torch.equal(own["stages.0.blocks.0.pwconv1.weight"].reshape(160, 40, 1, 1),
                       timm["stages.0.blocks.0.mlp.fc1.weight"])
    tv = official_to_torchvision(atto_official)
    model = load_weights(build_atto(), tv, layout="torchvision")
    assert torch.equal(model.state_dict()["stages.3.blocks.1.layerscale.gamma"].flatten(),
                       tv["features.7.1.layer_scale"].flatten())


def test_checkpoint_wrapper_is_unwrapped(atto_official):
    load_weights(build_atto(), {"model": atto_official, "epoch": 300}, layout="official")


def test_load_onto_meta_model(atto_official):
    with torch.device("meta"):
        model = build_atto()
    load_weights(model, atto_official, layout="official")
    weight = model.state_dict()["stages.2.blocks.3.dwconv.weight"]
    assert not weight.is_meta
    assert torch.equal(weight, atto_official["stages.2.3.dwconv.weight"])


# ----------------------------------------------------------------------- the rule tables


def _v2_official_to_timm(sd: dict) -> dict:
    """ConvNeXt V2 as timm names it: V1's renaming, GRN as `mlp.grn.weight/bias` of shape [C]."""
    grn = {k: v for k, v in sd.items() if ".grn." in k}
    out = official_to_timm({k: v for k, v in sd.items() if k not in grn})
    for key, value in grn.items():
        i, j, _, param = key.split(".")[1:]
        out[f"stages.{i}.blocks.{j}.mlp.grn.{ {'gamma': 'weight', 'beta': 'bias'}[param] }"] = value.reshape(-1)
    return out


def checkpoints(atto_official, resnet_torchvision) -> dict[tuple[str, str, str], dict]:
    """(layout, family, spec) -> a checkpoint of that spec in that layout."""
    v2 = ConvNeXtV2(depths=(2, 2, 6, 2), dims=(40, 80, 160, 320)).state_dict()
    return {
        ("official", "convnext", "convnext_atto"): atto_official,
        ("official", "convnext", "convnextv2_atto"): v2,
        ("timm", "convnext", "convnext_atto"): official_to_timm(atto_official),
        ("timm", "convnext", "convnextv2_atto"): _v2_official_to_timm(v2),
        ("timm", "resnet", "se_resnet50"): SEResNet50().state_dict(),
        ("torchvision", "convnext", "convnext_atto"): official_to_torchvision(atto_official),
        ("torchvision", "resnet", "resnet50"): resnet_torchvision,
        ("torchvision", "mobilenet", "mobilenet_v2"): MobileNetV2().state_dict(),
        ("torchvision", "densenet", "densenet121"): DenseNet().state_dict(),
        ("timm", "poolformer", "poolformer_s12"): PoolFormer().state_dict(),
        ("timm", "mixer", "mixer_s16"): Mixer().state_dict(),
        ("timm", "coatnet", "coatnet_0"): CoAtNet().state_dict(),
    }


def test_layouts_are_enumerable():
    assert archdsl.load_weights is load_weights
    assert set(LAYOUTS) == {"native", "official", "timm", "torchvision"}
    assert LAYOUTS["native"] == ()
    for layout, rules in LAYOUTS.items():
        for rule in rules:
            assert isinstance(rule, Rule) and set(rule.family.split("|")) <= {"convnext", "resnet", "mobilenet", "swin", "vit",
                                                                            "densenet", "poolformer", "mixer", "coatnet"}


@pytest.mark.parametrize("layout", ["official", "timm", "torchvision"])
def test_every_rule_is_used_and_the_mapping_is_one_to_one(layout, atto_official, resnet_torchvision):
    """Each rule renames at least one key of a real checkpoint of its family, and the
    renamed keys are exactly the model's keys, each once."""
    used: set[Rule] = set()
    for (lay, family, spec), sd in checkpoints(atto_official, resnet_torchvision).items():
        if lay != layout:
            continue
        model = archdsl.build(spec, device="meta")
        names, own = [], model.state_dict()
        for key in sd:
            first = next(r for r in LAYOUTS[layout] if r.apply(key) is not None and r.apply(key) in own)
            assert family in first.family.split("|"), (key, first)
            used.add(first)
            names.append(native_name(key, layout, own))
        assert sorted(names) == sorted(model.state_dict())
    mine = {r for r in LAYOUTS[layout]  # swin, vit: test_transformer_parity
            if set(r.family.split("|")) & {"convnext", "resnet", "mobilenet", "densenet", "poolformer", "mixer", "coatnet"}}
    assert used == mine, mine - used


def test_rule_patterns():
    rule = Rule("convnext", "features.{2i+1}.{j}.block.0.{p}", "stages.{i}.blocks.{j}.dwconv.{p}")
    assert rule.apply("features.5.8.block.0.weight") == "stages.2.blocks.8.dwconv.weight"
    assert rule.apply("features.4.8.block.0.weight") is None  # even: a downsample, not a stage
    assert rule.apply("features.5.8.block.0.weight.x") is None
    assert native_name("layer4.2.bn3.running_mean", "torchvision") == "stages.3.blocks.2.bn3.running_mean"
    assert native_name("features.6.1.bias", "torchvision") == "downsample.3.1.bias"
    assert native_name("anything.at.all", "native") == "anything.at.all"
    assert native_name("layer0.0.conv1.weight", "torchvision") is None


# ----------------------------------------------------------------------- forms of a checkpoint
SMALL = dict(widths=(8, 16, 32, 64), depths=(1, 1, 1, 1))


def averaged(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What a run's ema.safetensors holds: torch's AveragedModel state dict."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    ema.update_parameters(model)
    return ema.state_dict()


def test_an_ema_state_dict_loads_unwrapped_everywhere(capsys):
    """issue: ema.safetensors (AveragedModel: `module.` names and `n_averaged`) was refused by
    load_weights and transfer as another network's weights."""
    torch.manual_seed(0)
    src = archdsl.build("convnext_atto", **SMALL)
    sd = averaged(src)
    assert "n_averaged" in sd and all(k.startswith("module.") for k in sd if k != "n_averaged")
    note = "EMA weights (AveragedModel): module. prefix and n_averaged dropped"

    model = load_weights(archdsl.build("convnext_atto", **SMALL), sd)
    assert f"load_weights: {note}" in capsys.readouterr().out and model.weights_notes == [note]
    for key, value in src.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key

    net = archdsl.load("convnext_atto", **SMALL)
    moved, report = archdsl.transfer(net, net, sd, quiet=True)
    assert report.notes == [note] and len(report.exact) == report.total and f"note: {note}" in str(report)
    assert torch.equal(moved.state_dict()["head.fc.weight"], src.state_dict()["head.fc.weight"])

    with pytest.raises(WeightsError) as strict:  # build(state_dict=) takes a model's own state dict only
        archdsl.build("convnext_atto", **SMALL, state_dict=sd)
    assert "load_weights" in strict.value.hint

    # a `module.` prefix alone (no counter) is no AveragedModel: still refused, named
    plain = {k: v for k, v in sd.items() if k != "n_averaged"}
    with pytest.raises(WeightsError) as e:
        load_weights(archdsl.build("convnext_atto", **SMALL, device="meta"), plain)
    assert "module.stem.0.weight" in e.value.unexpected


def test_a_classifier_checkpoint_loads_into_a_features_build(capsys):
    """issue: load_weights(features build, classifier's state dict) was E800 for the head's
    4 tensors; they are left out and said, the input conv is fitted as for a full build, and
    everything else stays strict."""
    torch.manual_seed(0)
    sd = archdsl.build("convnext_atto").state_dict()
    backbone = archdsl.build("convnext_atto", features=True, input=(1, 64, 64))
    assert backbone.cut_modules == ("head.fc", "head.gap", "head.norm")
    load_weights(backbone, sd)
    out = capsys.readouterr().out
    assert "left out: 4 tensors of the head, which a features build does not compute" in out
    assert "stem.0.weight  (input conv: 3 -> 1 input channels (summed over RGB))" in out
    torch.testing.assert_close(backbone.state_dict()["stem.0.weight"], sd["stem.0.weight"].sum(1, keepdim=True))
    assert torch.equal(backbone.state_dict()["stages.3.blocks.1.pwconv2.weight"], sd["stages.3.blocks.1.pwconv2.weight"])
    assert [m.shape[1] for m in backbone(torch.randn(1, 1, 64, 64))] == [40, 80, 160, 320]

    # strict about the rest: a stray key, or a backbone tensor missing, is still an error
    with pytest.raises(WeightsError) as e:
        load_weights(backbone, {**sd, "stages.9.blocks.0.dwconv.weight": torch.zeros(1)})
    assert e.value.unexpected == ["stages.9.blocks.0.dwconv.weight"]
    with pytest.raises(WeightsError) as e:
        load_weights(backbone, {k: v for k, v in sd.items() if k != "stages.1.blocks.0.norm.bias"})
    assert e.value.missing == ["stages.1.blocks.0.norm.bias"]
    # a full build cuts nothing: the head is its own
    assert not hasattr(archdsl.build("convnext_atto", device="meta"), "cut_modules")


def test_a_vit_cut_after_a_block_leaves_out_the_rest_and_resamples_its_grid(capsys):
    """A ViT features build up to block 5: blocks 6-11 and the head are left out (their attention
    tensors sit inside the op: `attn.qkv.weight`), in load_weights and in build(state_dict=)."""
    torch.manual_seed(0)
    sd = archdsl.build("deit_s", device="meta").state_dict()
    sd = {k: torch.randn(v.shape) for k, v in sd.items()}
    vit = archdsl.build("deit_s", features=True, out_indices=(5,), input=(3, 224, 320), device="meta")
    load_weights(vit, sd)
    out = capsys.readouterr().out
    assert "left out: 76 tensors of `stages.0.blocks.6-11` and the head, which a features build" in out
    assert "position embedding resampled 14x14 -> 14x20 (bicubic, 1 class token kept)" in out
    assert vit(torch.randn(1, 3, 224, 320))[0].shape == (1, 384, 14, 20)
    small = archdsl.build("deit_s", input=(3, 32, 32), depths=(4,)).state_dict()
    cut = archdsl.build("deit_s", input=(3, 32, 32), depths=(4,), features=True, out_indices=(1,), state_dict=small)
    assert torch.equal(cut.state_dict()["stages.0.blocks.1.attn.qkv.weight"], small["stages.0.blocks.1.attn.qkv.weight"])


def test_a_long_error_is_capped_and_keeps_every_key():
    """issue: another family's checkpoint printed ~244 lines `unexpected: `x` (-> `x`, ...)`."""
    resnet = archdsl.build("resnet50", device="meta").state_dict()
    with pytest.raises(WeightsError) as e:
        load_weights(archdsl.build("convnext_atto", device="meta"), resnet)
    message = e.value.message
    assert len(message.splitlines()) <= 25
    assert "(-> `" not in message  # the arrow to the same name is gone
    assert "unexpected: `stages.0.blocks.0.conv1.weight` (which the model does not have)" in message
    assert len(e.value.unexpected) == 315 and len(e.value.missing) == 123  # the lists are whole
    assert "... and 309 more unexpected" in message and "... and 117 more missing" in message
    # where the layout renames, the arrow says to what
    with pytest.raises(WeightsError) as e:
        load_weights(archdsl.build("convnext_atto", device="meta"),
                     {"stages.5.0.dwconv.weight": torch.zeros(3)}, layout="official")
    assert "(-> `stages.5.blocks.0.dwconv.weight`, which the model does not have)" in e.value.message
