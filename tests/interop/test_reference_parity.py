"""archdsl's compiled ConvNeXt-T and ResNet-50 against independent plain-PyTorch models.

The same random weights (non-trivial BN statistics, layer scale ~U(0.5, 1.5)) go into the
reference and, through `load_weights`, into the compiled model; eval outputs must agree to
1e-5 relative. The timm and torchvision checkpoints are renamings of the official one,
written here by hand (not through archdsl's rule tables), so a wrong rule fails a test.
"""
from __future__ import annotations

import re

import pytest
import torch

import archdsl
from archdsl.interop.weights import load_weights
from reference_models import ConvNeXt, convnext_tiny, randomize_, resnet50

INPUT = (2, 3, 64, 64)


def official_to_timm(sd: dict[str, torch.Tensor], conv_mlp: bool = False) -> dict[str, torch.Tensor]:
    """The official ConvNeXt checkpoint renamed as timm names it. With `conv_mlp` the MLP is
    stored as 1x1 convs ([out, in, 1, 1]), as timm's `conv_mlp=True` models do."""
    out = {}
    for key, value in sd.items():
        if m := re.fullmatch(r"downsample_layers\.0\.(.+)", key):
            key = f"stem.{m[1]}"
        elif m := re.fullmatch(r"downsample_layers\.(\d+)\.(.+)", key):
            key = f"stages.{m[1]}.downsample.{m[2]}"
        elif m := re.fullmatch(r"stages\.(\d+)\.(\d+)\.(\w+)(\..+)?", key):
            module = {"dwconv": "conv_dw", "norm": "norm", "pwconv1": "mlp.fc1",
                      "pwconv2": "mlp.fc2", "gamma": "gamma"}[m[3]]
            key = f"stages.{m[1]}.blocks.{m[2]}.{module}{m[4] or ''}"
            if conv_mlp and module.startswith("mlp") and key.endswith("weight"):
                value = value[:, :, None, None]
        elif key.startswith("norm."):
            key = "head." + key
        elif key.startswith("head."):
            key = "head.fc." + key[len("head."):]
        out[key] = value
    return out


def official_to_torchvision(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The official ConvNeXt checkpoint renamed as torchvision names it: `features` alternates
    stem, stage 0, downsample 1, stage 1, ...; layer scale is [C, 1, 1]."""
    out = {}
    for key, value in sd.items():
        if m := re.fullmatch(r"downsample_layers\.(\d+)\.(.+)", key):
            key = f"features.{2 * int(m[1])}.{m[2]}"
        elif m := re.fullmatch(r"stages\.(\d+)\.(\d+)\.(\w+)(\..+)?", key):
            module = {"dwconv": "block.0", "norm": "block.2", "pwconv1": "block.3",
                      "pwconv2": "block.5", "gamma": "layer_scale"}[m[3]]
            key = f"features.{2 * int(m[1]) + 1}.{m[2]}.{module}{m[4] or ''}"
            if module == "layer_scale":
                value = value.reshape(-1, 1, 1)
        elif key.startswith("norm."):
            key = "classifier.0." + key[len("norm."):]
        elif key.startswith("head."):
            key = "classifier.2." + key[len("head."):]
        out[key] = value
    return out


RENAMINGS = {
    "official": ("official", lambda sd: sd),
    "timm": ("timm", official_to_timm),
    "timm-conv-mlp": ("timm", lambda sd: official_to_timm(sd, conv_mlp=True)),
    "torchvision": ("torchvision", official_to_torchvision),
}


def assert_same_outputs(reference: torch.nn.Module, model: torch.nn.Module) -> torch.Tensor:
    """Same logits on one random batch, to 1e-5 relative; returns the reference's."""
    x = torch.randn(INPUT, generator=torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        want, got = reference(x), model(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())
    return want


@pytest.fixture(scope="module")
def convnext_t_reference() -> ConvNeXt:
    return randomize_(convnext_tiny(), seed=0)


@pytest.mark.parametrize("renaming", list(RENAMINGS))
def test_convnext_t_matches_reference(convnext_t_reference, renaming):
    layout, rename = RENAMINGS[renaming]
    checkpoint = rename(convnext_t_reference.state_dict())
    model = load_weights(archdsl.build("convnext_t"), checkpoint, layout=layout)
    assert_same_outputs(convnext_t_reference, model)


def test_convnext_atto_matches_reference():
    """Other depths and widths go through the same rules."""
    reference = randomize_(ConvNeXt(depths=(2, 2, 6, 2), dims=(40, 80, 160, 320)), seed=2)
    model = load_weights(archdsl.build("convnext_atto"), reference.state_dict(), layout="official")
    assert_same_outputs(reference, model)


def test_resnet50_matches_reference():
    reference = randomize_(resnet50(), seed=3, sample=torch.randn(8, *INPUT[1:]))
    bn = reference.layer3[0].bn2
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
    model = load_weights(archdsl.build("resnet50"), reference.state_dict(), layout="torchvision")
    assert_same_outputs(reference, model)
    # the buffers travelled too, not only the parameters
    torch.testing.assert_close(model.state_dict()["stages.2.blocks.0.bn2.running_var"], bn.running_var)


def test_native_round_trip(convnext_t_reference):
    model = load_weights(archdsl.build("convnext_t"), convnext_t_reference.state_dict(), "official")
    again = load_weights(archdsl.build("convnext_t"), model.state_dict(), layout="native")
    assert_same_outputs(convnext_t_reference, again)
