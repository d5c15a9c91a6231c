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
