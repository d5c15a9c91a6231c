"""archdsl's MobileNetV2, SE-ResNet-50 and ConvNeXt V2 against independent plain-PyTorch models
(tests/reference_convnets.py) with the state-dict names of torchvision, timm and the official
ConvNeXt-V2 code.

The same non-trivial weights (BN statistics measured and perturbed, SE convs random with
random biases, GRN gamma/beta far from their zero init) go into the reference and, through
`load_weights`, into the compiled model; eval logits agree to 1e-5 relative.
"""
from __future__ import annotations

import pytest
import torch

import archdsl
from archdsl.interop.weights import load_weights
from test_reference_parity import INPUT
from test_reference_parity import assert_same_outputs as same_logits
from reference_convnets import GRN, ConvNeXtV2, MobileNetV2, SEResNet50, randomize_

def assert_same_outputs(reference: torch.nn.Module, model: torch.nn.Module) -> None:
    want = same_logits(reference, model)
    assert want.std() > 1e-3  # the logits carry signal, not a collapsed constant


def test_mobilenet_v2_matches_torchvision_layout():
    torch.manual_seed(0)
    reference = randomize_(MobileNetV2(), seed=7, sample=torch.randn(8, *INPUT[1:]))
    sd = reference.state_dict()
    assert "features.1.conv.0.0.weight" in sd and "features.2.conv.3.running_var" in sd
    assert len(sd) == len(archdsl.build("mobilenet_v2", device="meta").state_dict())
    model = load_weights(archdsl.build("mobilenet_v2"), sd, layout="torchvision")
    assert_same_outputs(reference, model)
    # the t = 1 block's depthwise BN and a later block's expansion conv went where they belong
    native = model.state_dict()
    torch.testing.assert_close(native["stages.0.blocks.0.bn2.running_var"], sd["features.1.conv.0.1.running_var"])
    torch.testing.assert_close(native["stages.6.blocks.0.conv1.weight"], sd["features.17.conv.0.0.weight"])


def test_se_resnet50_matches_timm_layout():
    torch.manual_seed(0)
    reference = randomize_(SEResNet50(), seed=8, sample=torch.randn(8, *INPUT[1:]))
    sd = reference.state_dict()
    assert sd["layer3.2.se.fc1.bias"].abs().sum() > 0  # SE biases are not at their init
    model = load_weights(archdsl.build("se_resnet50"), sd, layout="timm")
    assert_same_outputs(reference, model)
    torch.testing.assert_close(model.state_dict()["stages.3.blocks.2.gate.conv2.weight"], sd["layer4.2.se.fc2.weight"])


@pytest.mark.parametrize("name,depths,dims", [
    ("convnextv2_atto", (2, 2, 6, 2), (40, 80, 160, 320)),
    ("convnextv2_tiny", (3, 3, 9, 3), (96, 192, 384, 768)),
])
def test_convnextv2_matches_official_layout(name, depths, dims):
    reference = randomize_(ConvNeXtV2(depths=depths, dims=dims), seed=9)
    grn = next(m for m in reference.modules() if isinstance(m, GRN))
    assert grn.gamma.abs().min() > 0 and grn.beta.abs().min() > 0
    model = load_weights(archdsl.build(name), reference.state_dict(), layout="official")
    assert_same_outputs(reference, model)
    assert model.state_dict()["stages.2.blocks.1.grn.gamma"].shape == (1, 1, 1, 4 * dims[2])


def test_grn_is_the_identity_at_init():
    """gamma and beta start at zero, as the official code has them."""
    model = archdsl.build("convnextv2_atto", input="3x32x32", classes=10)
    grns = {k: v for k, v in model.state_dict().items() if ".grn." in k}
    assert grns and all(v.abs().sum() == 0 for v in grns.values())


def test_convnextv2_matches_hf_transformers():
    """Extra evidence: HF's ConvNextV2 built from a config (no download) gives the same features."""
    transformers = pytest.importorskip("transformers")
    config = transformers.ConvNextV2Config(depths=[2, 2, 6, 2], hidden_sizes=[40, 80, 160, 320], num_labels=10)
    torch.manual_seed(0)
    hf = transformers.ConvNextV2ForImageClassification(config).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if "grn" in name or "layernorm" in name or name.endswith("bias"):
                p.copy_(torch.randn_like(p) * 0.3 + (1.0 if "layernorm.weight" in name else 0.0))
    assert sum(p.numel() for p in hf.parameters()) == archdsl.analyze("convnextv2_atto", classes=10).params
    official = {}
    for key, value in hf.state_dict().items():
        key = key.replace("convnextv2.", "")
        key = (key.replace("embeddings.patch_embeddings", "downsample_layers.0.0")
                  .replace("embeddings.layernorm", "downsample_layers.0.1"))
        if key.startswith("encoder.stages."):
            _, _, i, rest = key.split(".", 3)
            if rest.startswith("downsampling_layer."):
                key = f"downsample_layers.{i}." + rest[len("downsampling_layer."):]
            else:
                _, j, module = rest.split(".", 2)
                module = (module.replace("layernorm", "norm").replace("grn.weight", "grn.gamma")
                          .replace("grn.bias", "grn.beta"))
                key = f"stages.{i}.{j}.{module}"
        key = key.replace("layernorm.", "norm.").replace("classifier.", "head.")
        official[key] = value
    model = load_weights(archdsl.build("convnextv2_atto", classes=10), official, layout="official").eval()
    x = torch.randn(INPUT, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = hf(x).logits, model(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())
