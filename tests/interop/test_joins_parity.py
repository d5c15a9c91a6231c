"""archdsl's DenseNet-121, PoolFormer-S12 and MLP-Mixer-S/16 against independent plain-PyTorch
models (tests/reference_joins.py) with the official state-dict names: parameters equal to the
published counts, and the same eval logits (1e-5 relative, fp32) from the same non-trivial
weights loaded through `load_weights`."""
from __future__ import annotations

import torch

import archdsl
from archdsl.interop.weights import load_weights
from reference_joins import DenseNet
from reference_models import randomize_

SMALL = (2, 3, 64, 64)


def same_logits(reference: torch.nn.Module, model: torch.nn.Module, shape=SMALL) -> torch.Tensor:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        want, got = reference(x), model(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())
    assert want.std() > 1e-3  # the logits carry signal
    return want


def test_densenet121_counts_are_the_references():
    """The published counts are in tests/test_specs.py; here the reference agrees with them."""
    with torch.device("meta"):
        assert sum(p.numel() for p in DenseNet().parameters()) == archdsl.analyze("densenet121").params == 7_978_856


def test_densenet121_matches_torchvision_layout():
    reference = randomize_(DenseNet(), seed=11, sample=torch.randn(4, *SMALL[1:]))
    sd = reference.state_dict()
    assert "features.denseblock3.denselayer24.conv2.weight" in sd and "features.transition2.conv.weight" in sd
    model = load_weights(archdsl.build("densenet121", input="3x64x64"), sd, layout="torchvision")
    same_logits(reference, model)
    native = model.state_dict()
    torch.testing.assert_close(native["stages.2.blocks.23.bn2.running_var"],
                               sd["features.denseblock3.denselayer24.norm2.running_var"])
    torch.testing.assert_close(native["downsample.3.2.weight"], sd["features.transition3.conv.weight"])
