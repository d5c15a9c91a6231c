"""The inference build (`build(spec, mode="eval")`) and each of its passes preserve the
function: logits equal the unfused model's in eval mode to 1e-5 (relative to the logits'
scale), with non-trivial weights, BN statistics and layer scales. Passes match conservatively:
what they do not know stays in the graph."""
from __future__ import annotations

import operator

import pytest
import torch
from torch import nn

import archdsl
from compiler.modules import LayerScale
from compiler.passes.channels_last import to_channels_last
from compiler.passes.drop_identity import remove_identities
from compiler.passes.epilogue import fuse_epilogues
from compiler.passes.eval_build import annotate_shapes
from compiler.passes.fold_bn import fold_batchnorm
from compiler.passes.fold_scale import fold_layerscale
from reference_models import randomize_

SMALL = "3x32x32"

MIXED = """
network mixed
input 3x32x32
classes 10
block b {
    residual {
        dwconv7, ln, pwconv 4x, gelu, pwconv, layerscale 1e-6, droppath 0.1
    }
}
block bott {
    residual {
        conv1 0.5x, bn, relu
        conv3 0.5x, bn, silu
        conv1, bn
    }
    relu
}
stem   conv3 s2 16, bn, relu
downsample conv3 s2, bn
stages {
    16 bott x2
    32 b x2
}
head gap, ln, linear
"""


def randomized(spec, **overrides) -> nn.Module:
    """A train build with random weights, BN statistics measured and perturbed, random layer scales."""
    torch.manual_seed(0)
    model = archdsl.build(spec, input=SMALL, **overrides) if isinstance(spec, str) and "\n" not in spec \
        else archdsl.build(archdsl.loads(spec), **overrides)
    randomize_(model, sample=torch.randn(8, 3, 32, 32))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LayerScale):
                m.gamma.uniform_(0.5, 1.5)
    return model.eval()


def assert_same_logits(a: torch.Tensor, b: torch.Tensor) -> None:
    scale = a.abs().max().item()
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5 * max(scale, 1.0))


def check_pass(spec: str, run_pass, **overrides) -> torch.fx.GraphModule:
    """Apply one pass to an unfused eval-mode train build; the logits must not move."""
    model = randomized(spec, **overrides)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        annotate_shapes(model, (3, 32, 32))
        out = run_pass(model)
        assert_same_logits(expected, out(x))
    return out


def modules_of(gm: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in gm.modules() if isinstance(m, kind)]


def test_fold_batchnorm_removes_every_norm_after_a_conv():
    gm = check_pass(MIXED, fold_batchnorm)
    assert not modules_of(gm, nn.BatchNorm2d)
    assert all(c.bias is not None for c in modules_of(gm, nn.Conv2d))


def test_fold_batchnorm_leaves_a_norm_whose_conv_has_another_user():
    text = MIXED.replace("stem   conv3 s2 16, bn, relu", "stem   conv3 s2 16, relu, bn")
    gm = check_pass(text, fold_batchnorm)
    assert len(modules_of(gm, nn.BatchNorm2d)) == 1  # the stem's bn follows a relu


def test_fold_layerscale_scales_the_weights_once():
    model = randomized("convnext_atto")
    gm = check_pass("convnext_atto", fold_layerscale)
    assert not modules_of(gm, LayerScale)
    assert "scaled_linear" not in gm.code  # nothing is scaled per call any more
    assert not torch.equal(gm.get_submodule("stages.0.blocks.0.pwconv2").weight,
                           model.get_submodule("stages.0.blocks.0.pwconv2").weight)


def test_remove_identities_drops_droppath_only_at_eval():
    gm = check_pass(MIXED, remove_identities)
    assert "droppath" not in gm.code


@pytest.mark.parametrize("act, attr", [(nn.ReLU(), "relu"), (nn.GELU(), "gelu"), (nn.GELU("tanh"), "gelu"),
                                       (nn.SiLU(), "swish"), (nn.ReLU6(), "hardtanh"), (nn.Hardswish(), "hardswish"),
                                       (nn.Sigmoid(), "sigmoid"), (nn.Tanh(), "tanh")])
def test_fused_activations_match_torch(act, attr):
    torch.manual_seed(0)
    for layer, x in [(nn.Linear(16, 24), torch.randn(2, 5, 16) * 3),
                     (nn.Conv2d(16, 24, 3, padding=1), torch.randn(2, 16, 8, 8) * 3)]:
        gm = torch.fx.symbolic_trace(nn.Sequential(layer, act)).eval()
        annotate_shapes(gm, tuple(x.shape[1:]))
        with torch.no_grad():
            expected = gm(x)
            fused = fuse_epilogues(gm)
            assert attr in fused.code and "mkldnn" in fused.code
            torch.testing.assert_close(fused(x), expected, rtol=1e-5, atol=1e-5)


def test_epilogue_fusion_on_whole_networks_and_leaves_unknown_activations():
    gm = check_pass(MIXED, lambda m: fuse_epilogues(fold_layerscale(fold_batchnorm(remove_identities(m)))))
    code = gm.code
    assert "_convolution_pointwise.binary" in code and "'relu'" in code  # conv1 + shortcut + relu
    assert "'swish'" in code and "'gelu'" in code

    class Mish(nn.Module):  # an activation the pass does not know
        def forward(self, x):
            return nn.functional.mish(x)

    seq = torch.fx.symbolic_trace(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), Mish())).eval()
    annotate_shapes(seq, (4, 8, 8))
    assert "mkldnn" not in fuse_epilogues(seq).code


def test_convnext_pwconv2_absorbs_the_residual_add():
    gm = check_pass("convnext_atto", lambda m: fuse_epilogues(fold_layerscale(remove_identities(m))))
    # Stage 1 adds in NHWC (the stem ends in `ln`); later stages add in NCHW after the
    # downsample conv, behind a permute, which the pass moves onto the residual (a view).
    assert gm.code.count("_linear_pointwise.binary") == 12  # every block
    assert not any(n.target is operator.add for n in gm.graph.nodes)


def test_residual_operand_is_not_overwritten():
    gm = check_pass(MIXED, lambda m: fuse_epilogues(fold_batchnorm(m)))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(gm(x), gm(x))  # a fused add that wrote into its operand would drift


def test_add_with_mismatched_shapes_is_not_fused():
    class Broadcast(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 1)

        def forward(self, x):
            return self.conv(x) + x.mean((2, 3), keepdim=True)

    gm = torch.fx.symbolic_trace(Broadcast()).eval()
    annotate_shapes(gm, (4, 8, 8))
    out = fuse_epilogues(gm)
    assert any(n.target is operator.add for n in out.graph.nodes)


def test_channels_last_converts_once_at_the_input():
    gm = check_pass("convnext_atto", to_channels_last)
    assert gm.code.count(".contiguous(") == 1
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in modules_of(gm, nn.Conv2d))


@pytest.mark.parametrize("spec", ["resnet50", "convnext_t", MIXED])
def test_eval_build_equals_the_train_build(spec):
    model = randomized(spec)
    overrides = {"input": SMALL} if "\n" not in spec else {}
    net = archdsl.loads(spec) if "\n" in spec else spec
    ev = archdsl.build(net, mode="eval", state_dict=model.state_dict(), **overrides)
    assert not ev.training and not any(p.requires_grad for p in ev.parameters())
    assert not modules_of(ev, nn.BatchNorm2d) and not modules_of(ev, LayerScale)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert_same_logits(model(x), ev(x))
    kept = set(ev.state_dict())
    assert kept <= set(model.state_dict()) | {k.replace("weight", "bias") for k in model.state_dict()}
    assert not any(".bn" in k or "gamma" in k for k in kept)


def test_eval_build_on_meta_allocates_nothing():
    ev = archdsl.build("convnext_t", device="meta", mode="eval")
    assert all(p.device.type == "meta" for p in ev.parameters())


def test_mode_must_be_train_or_eval():
    with pytest.raises(archdsl.ArchError, match="mode"):
        archdsl.build("convnext_atto", device="meta", mode="inference")


@pytest.mark.parametrize("name", ["resnet18", "convnext_atto"])
def test_an_inference_build_moved_to_float64_runs_unfused(name):
    """oneDNN's fused kernels take fp32/bf16 only: `.double()` puts back the unfused graph, which
    computes what the fp64 train build does."""
    torch.manual_seed(0)
    train = archdsl.build(name, input="3x32x32", classes=10).eval()
    model = archdsl.build(name, input="3x32x32", classes=10, mode="eval", state_dict=train.state_dict())
    assert any("mkldnn" in str(n.target) for n in model.graph.nodes)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    got = model.double()(x)
    with torch.no_grad():
        want = train.double()(x)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6 * want.abs().max().item())
