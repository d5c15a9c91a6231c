"""The constructs the convnets around ConvNeXt need: gates, `shortcut none`, `in` widths,
per-stage values, `if`, the new activations, `grn`, `gwN`, and hints that do not guess."""
from __future__ import annotations

import operator

import pytest
import torch

import archdsl
from archdsl.lang.errors import ArchError
from archdsl.lang.suggest import suggest_op
from compiler import ops as registry

BASE = """network t
input 3x32x32
classes 10
stem conv3 16, bn, relu
head gap, linear
"""


def build(text: str) -> torch.nn.Module:
    return archdsl.build(archdsl.loads(BASE + text))


def test_relu6_is_relu6_not_relu_with_a_kernel():
    model = build("block b { conv3, relu6 }\nstages { 16 b x1 }")
    act = model.get_submodule("stages.0.blocks.0.relu6")
    assert isinstance(act, torch.nn.ReLU6)
    assert act(torch.tensor([7.0, -1.0])).tolist() == [6.0, 0.0]


@pytest.mark.parametrize("word,cls", [("sigmoid", "Sigmoid"), ("hardsigmoid", "Hardsigmoid"),
                                      ("silu", "SiLU"), ("hardswish", "Hardswish")])
def test_activations_are_the_real_torch_modules(word, cls):
    model = build(f"block b {{ conv3, {word} }}\nstages {{ 16 b x1 }}")
    assert type(model.get_submodule(f"stages.0.blocks.0.{word}")).__name__ == cls


def test_relu6_with_a_number_is_an_error_naming_the_cause():
    with pytest.raises(ArchError) as info:
        archdsl.check(archdsl.loads(BASE + "block b { conv3, relu6 3 }\nstages { 16 b x1 }"))
    assert "the 6 is part of its name" in info.value.message


def test_gate_multiplies_the_input_by_a_1x1_map():
    text = "block b {\n conv3\n gate { gap, conv1 0.25x, relu, conv1, sigmoid }\n}\nstages { 16 b x1 }"
    report = archdsl.analyze(archdsl.loads(BASE + text))
    model = build(text)
    names = dict(model.named_modules())
    assert isinstance(names["stages.0.blocks.0.gate.conv1"], torch.nn.Conv2d)
    assert names["stages.0.blocks.0.gate.conv1"].bias is not None  # SE convs have bias
    assert names["stages.0.blocks.0.gate.conv2"].out_channels == 16
    assert any(n.target is operator.mul for n in model.graph.nodes)
    # gate: conv 16->4 and 4->16 with bias
    assert report.params == sum(p.numel() for p in model.parameters())
    x = torch.randn(2, 3, 32, 32)
    gap = model.get_submodule("stages.0.blocks.0.gate.gap")
    assert gap(torch.randn(2, 16, 8, 8)).shape == (2, 16, 1, 1)
    assert model(x).shape == (2, 10)


def test_optional_residual_adds_only_where_the_shape_allows():
    text = ("block b { residual { conv3 stride, bn } shortcut none }\n"
            "stages {\n 16 b x2\n 32 b x2 s2\n}")
    model = build(text)
    adds = [n for n in model.graph.nodes if n.target is operator.add]
    assert len(adds) == 3  # the stage-2 first block changes the shape: no residual there


def test_in_is_the_block_input_and_per_stage_values_substitute():
    text = ("block b(t, k) { residual { if t > 1 { conv1 tx in, bn }\n dwconvk stride, bn\n conv1, bn } shortcut none }\n"
            "stages {\n 16 b x1 t=1 k=3\n 24 b x2 s2 t=6 k=5\n}")
    model = build(text)
    mods = dict(model.named_modules())
    assert "stages.0.blocks.0.conv1" not in mods  # t = 1: no expansion
    assert mods["stages.1.blocks.0.conv1"].out_channels == 6 * 16  # 6x the block's input
    assert mods["stages.1.blocks.1.conv1"].out_channels == 6 * 24
    assert mods["stages.1.blocks.0.dwconv"].kernel_size == (5, 5)
    assert mods["stages.0.blocks.0.dwconv"].kernel_size == (3, 3)


def test_group_width():
    model = build("block b { conv3 gw8 }\nstages { 48 b x1 }")
    conv = model.get_submodule("stages.0.blocks.0.conv")
    assert conv.groups == 16 // 8  # the conv's input is the stem's 16 channels


def test_repeated_words_ending_in_a_digit_are_numbered_with_an_underscore():
    model = build("block b { conv3, relu6, conv3, relu6 }\nstages { 16 b x1 }")
    mods = dict(model.named_modules())
    assert "stages.0.blocks.0.relu6_1" in mods and "stages.0.blocks.0.relu6_2" in mods


def test_grn_matches_the_formula():
    model = build("block b { residual { conv3, ln, pwconv 2x, grn, pwconv 1x } }\nstages { 16 b x1 }")
    grn = model.get_submodule("stages.0.blocks.0.grn")
    assert grn.channels_last and grn.gamma.shape == (1, 1, 1, 32)
    with torch.no_grad():
        grn.gamma.normal_()
        grn.beta.normal_()
    x = torch.randn(2, 5, 5, 32)
    gx = x.pow(2).sum((1, 2), keepdim=True).sqrt()
    nx = gx / (gx.mean(-1, keepdim=True) + 1e-6)
    torch.testing.assert_close(grn(x), grn.gamma * (x * nx) + grn.beta + x)


def test_hints_suggest_only_an_ops_own_spellings():
    without_grn = {k: v for k, v in registry.REGISTRY.items() if k != "grn"}
    assert "gn" not in suggest_op("grn", without_grn)
    assert "docs/language.md" in suggest_op("grn", without_grn)
    assert "`silu`" in suggest_op("swish", registry.REGISTRY)
    assert "`bn`" in suggest_op("batchnorm", registry.REGISTRY)
    assert "`dwconv7`" in suggest_op("dwcnv7", registry.REGISTRY)
    assert "`ln`" in suggest_op("lnn", registry.REGISTRY)
    assert "`relu6`" in suggest_op("relu_6", registry.REGISTRY)


def test_droppath_goes_with_an_absent_residual():
    """torchvision's MBConv applies stochastic depth only with its residual: where the
    residual is absent, so is the drop path (else it would drop the block's whole output)."""
    model = archdsl.build("efficientnet_b0", input="3x32x32", classes=10)
    rates = {n: m.p for n, m in model.named_modules() if type(m).__name__ == "DropPath"}
    assert "stages.1.blocks.0.droppath" not in rates  # stride 2: no residual, no drop path
    assert rates["stages.1.blocks.1.droppath"] == pytest.approx(0.2 * 2 / 16)  # torchvision's rate
    assert len(rates) == 16 - 7  # every block but each stage's first
