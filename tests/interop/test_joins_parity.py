"""archdsl's DenseNet-121, PoolFormer-S12, MLP-Mixer-S/16 and CoAtNet-0 against independent plain-PyTorch
models (tests/reference_joins.py) with the official state-dict names: parameters equal to the
published counts, and the same eval logits (1e-5 relative, fp32) from the same non-trivial
weights loaded through `load_weights`."""
from __future__ import annotations

from pathlib import Path

import torch

import archdsl
from archdsl.interop.weights import load_weights
from reference_joins import CoAtNet, DenseNet, Mixer, PoolFormer, RelPosBias, Scale
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


def test_poolformer_s12_counts_are_the_references():
    with torch.device("meta"):
        assert sum(p.numel() for p in PoolFormer().parameters()) == archdsl.analyze("poolformer_s12").params \
            == 11_915_176


def test_poolformer_s12_matches_timm_layout():
    reference = randomize_(PoolFormer(), seed=12)
    with torch.no_grad():  # layer scale far from its 1e-5 init, so the token mixer and MLP count
        for m in reference.modules():
            if isinstance(m, Scale):
                m.scale.uniform_(0.5, 1.5)
            if isinstance(m, torch.nn.GroupNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    sd = reference.state_dict()
    assert "stages.2.blocks.5.layer_scale1.scale" in sd and "stages.3.downsample.conv.weight" in sd
    model = load_weights(archdsl.build("poolformer_s12", input="3x64x64"), sd, layout="timm")
    same_logits(reference, model)
    # the token mixer is pool(x) - x: with the pool alone (the function the spec had before
    # `subtract { }`, the parameters the same) the logits differ
    text = (Path(archdsl.__file__).parent / "specs" / "poolformer_s12.arch").read_text()
    pooled = archdsl.loads(text.replace("subtract { avgpool3 }", "avgpool3"))
    other = load_weights(archdsl.build(pooled, input="3x64x64"), sd, layout="timm").eval()
    x = torch.randn(SMALL, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert not torch.allclose(other(x), model(x), rtol=1e-3)


def test_mixer_s16_counts_are_the_references():
    with torch.device("meta"):
        assert sum(p.numel() for p in Mixer().parameters()) == archdsl.analyze("mixer_s16").params == 18_528_264


def test_mixer_s16_matches_timm_layout():
    """At 64x64 there are 16 tokens, so the token MLP is 16 -> 256 -> 16 (timm's at that size)."""
    reference = randomize_(Mixer(img_size=64), seed=13)
    sd = reference.state_dict()
    assert "blocks.7.mlp_tokens.fc2.weight" in sd and sd["blocks.0.mlp_tokens.fc1.weight"].shape == (256, 16)
    model = load_weights(archdsl.build("mixer_s16", input="3x64x64"), sd, layout="timm")
    same_logits(reference, model)


def test_coatnet_0_counts_are_the_references():
    with torch.device("meta"):
        assert sum(p.numel() for p in CoAtNet().parameters()) == archdsl.analyze("coatnet_0").params == 25_036_820


def test_coatnet_0_matches_timm_layout():
    """At 64x64 the Transformer stages run on 4x4 and 2x2 maps, their bias tables 7x7 and 3x3."""
    reference = randomize_(CoAtNet(img_size=64), seed=14, sample=torch.randn(4, *SMALL[1:]))
    with torch.no_grad():  # the relative-position bias far from its zero init
        for m in reference.modules():
            if isinstance(m, RelPosBias):
                m.relative_position_bias_table.normal_(0, 1.0)
    sd = reference.state_dict()
    assert "stages.2.blocks.0.norm1.norm.weight" in sd and "stages.3.blocks.1.attn.rel_pos.relative_position_bias_table" in sd
    model = load_weights(archdsl.build("coatnet_0", input="3x64x64"), sd, layout="timm")
    same_logits(reference, model)
    # the downsampling block: the attention widens 192 -> 384 with no extra layer
    assert model.state_dict()["stages.2.blocks.0.attn.qkv.weight"].shape == (3 * 384, 192, 1, 1)
