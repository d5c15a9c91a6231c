"""`archdsl diff` between the convnets around ConvNeXt says what changed in the family's terms."""
from __future__ import annotations

import archdsl


def _changes(a: str, b: str):
    return archdsl.diff(a, b).changes


def test_se_resnet50_is_resnet50_with_a_gate():
    changes = _changes("resnet50", "se_resnet50")
    assert [(c.kind, c.what) for c in changes] == [("added", "gate")]
    assert changes[0].after == "gate { gap, conv1 0.0625x, relu, conv1, sigmoid }"
    assert changes[0].where == "block `bottleneck`, residual branch"


def test_convnextv2_is_grn_instead_of_layer_scale():
    changes = _changes("convnext_t", "convnextv2_tiny")
    assert [(c.kind, c.before, c.after) for c in changes] == [("changed", "layerscale 1e-6", "grn")]
    assert "after `pwconv 4x, gelu`" in changes[0].details[0]
    assert archdsl.diff("convnext_t", "convnextv2_tiny").summary() == "layerscale 1e-6 -> grn"


def test_mobilenet_v2_to_convnext_names_the_expansion_ratio():
    d = archdsl.diff("mobilenet_v2", "convnext_atto")
    expand = next(c for c in d.changes if c.before == "conv1 tx in")
    assert expand.after == "pwconv 4x"
    detail = expand.details[0]
    assert "tx of the block's input (t = 1,6,6,6 by stage) -> 4x" in detail
    shortcut = next(c for c in d.changes if c.what == "shortcut")
    assert shortcut.before.startswith("none")
    assert "inverted" in str(d) and "convnext" in str(d)


def test_efficientnet_kernel_per_stage_and_gate():
    d = archdsl.diff("mobilenet_v2", "efficientnet_b0")
    kernel = next(c for c in d.changes if c.after == "dwconvk stride")
    assert "kernel 3 -> k (k = 3,3,5,3,5,5,3 by stage)" in kernel.details
    assert any(c.kind == "added" and c.what == "gate" for c in d.changes)


def test_resnext_groups():
    d = archdsl.diff("resnet50", "resnext50_32x4d")
    conv3 = next(c for c in d.changes if c.after == "conv3 0.5x stride g32")
    assert any("groups 1 -> 32" in x for x in conv3.details)
