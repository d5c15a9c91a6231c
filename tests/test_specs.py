"""Every shipped spec, checked against things archdsl did not compute itself: the paper's
exact parameter counts and MACs, and torch's FlopCounterMode on the built module."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import archdsl
from archdsl.lang.specpath import shipped_names

SPECS = sorted(shipped_names())

# From the paper / torchvision / timm (../shared/reference/convnext_paper.md): params at 1000 classes, GMACs at 224.
PAPER = {
    "resnet50": (25_557_032, 4.09),
    "convnext_t": (28_589_128, 4.46),
    "convnext_s": (50_223_688, 8.68),
    "convnext_b": (88_591_464, 15.35),
    "convnext_l": (197_767_336, 34.36),
    "convnext_xl": (350_196_968, 60.92),
    # The convnets around ConvNeXt (../shared/reference/families.md): torchvision, timm, official.
    "resnet18": (11_689_512, 1.81),
    "resnet34": (21_797_672, 3.66),
    "resnet101": (44_549_160, 7.80),
    "resnet152": (60_192_808, 11.51),
    "resnext50_32x4d": (25_028_904, 4.23),
    "wide_resnet50_2": (68_883_240, 11.40),
    "mobilenet_v2": (3_504_872, 0.30),
    "se_resnet50": (28_088_024, 4.09),
    "efficientnet_b0": (5_288_548, 0.39),
    "regnet_y_400mf": (4_344_144, 0.40),
    "convnextv2_atto": (3_708_400, None),
    "convnextv2_femto": (5_233_240, None),
    "convnextv2_pico": (9_066_280, None),
    "convnextv2_nano": (15_623_800, None),
    "convnextv2_tiny": (28_635_496, None),
    "convnextv2_base": (88_717_800, None),
    # Swin (Liu et al., 2021, Table 1; the official code's counts), DeiT/ViT (timm): GFLOPs as published,
    # to the digits published
    "swin_t": (28_288_354, 4.5),
    "swin_s": (49_606_258, 8.7),
    "swin_b": (87_768_224, 15.4),
    "deit_s": (22_050_664, 4.6),
    "vit_b16": (86_567_656, 17.6),
    # The networks whose joins and token mixing issue 20 added (tests/interop/test_joins_parity.py)
    "densenet121": (7_978_856, 2.83),   # torchvision: 7,978,856 params, 2.83 GFLOPS
    "poolformer_s12": (11_915_176, 1.8),  # timm; the paper's Table 2: 12M params, 1.8G MACs
    "mixer_s16": (18_528_264, None),      # timm mixer_s16_224
    "coatnet_0": (25_036_820, None),      # timm coatnet_0_224
    # The isotropic ConvNeXt-L as released, with layer scale (facebookresearch/ConvNeXt issues 51, 77)
    "convnext_iso_l": (305_942_504, None),
}

# Published only rounded (ConvNeXt paper, Table 3): params in millions, GFLOPs.
PAPER_ROUNDED = {
    "convnext_iso_s": (22, 4.3),
    "convnext_iso_b": (87, 16.9),
    "convnext_iso_l": (306, 59.7),
}

# At 32x32 Swin's first stage is 8x8, which 7x7 windows do not tile (an error that says so):
# the small build uses 4x4 windows, so stage 1 still shifts (by 2) and stage 2 (4x4) is one window.
SMALL = {name: {"swin.wattn.kernel": 4} for name in ("swin_t", "swin_s", "swin_b")}


def count_flops(model, x) -> int:
    """FlopCounterMode's count of one forward. Attention runs on the math backend here: on CPU
    torch has no FLOP formula for the fused `_scaled_dot_product_flash_attention_for_cpu` (it
    would count 0); the math backend computes the same attention as two counted `bmm`."""
    counter = FlopCounterMode(display=False)
    with counter, sdpa_kernel(SDPBackend.MATH):
        y = model(x)
    return counter.get_total_flops(), y


def _digits(x: float) -> int:
    return len(repr(x).split(".")[1])


@pytest.mark.parametrize("name", sorted(PAPER))
def test_params_and_macs_match_the_paper(name):
    report = archdsl.analyze(name)
    params, gmacs = PAPER[name]
    assert report.params == params
    if gmacs is not None:  # where the reference gives MACs; FlopCounterMode checks them for all
        assert round(report.macs / 1e9, _digits(gmacs)) == gmacs


def test_convnext_drop_path_rates_are_the_official_settings():
    """The official ConvNeXt training settings (ImageNet-1K, 300 epochs): T 0.1, S 0.4, B 0.5, L 0.5."""
    got = {n: archdsl.load(f"convnext_{n}").train.droppath for n in ("t", "s", "b", "l")}
    assert got == {"t": 0.1, "s": 0.4, "b": 0.5, "l": 0.5}


@pytest.mark.parametrize("name", sorted(PAPER_ROUNDED))
def test_params_and_macs_match_the_paper_rounded(name):
    report = archdsl.analyze(name)
    mparams, gmacs = PAPER_ROUNDED[name]
    assert round(report.params / 1e6) == mparams
    assert round(report.macs / 1e9, 1) == gmacs


@pytest.mark.parametrize("name", SPECS)
def test_analytic_macs_equal_flop_counter_at_full_size(name):
    """On the meta device: the real op graph at 224x224 is counted without any arithmetic."""
    report = archdsl.analyze(name)
    model = archdsl.build(name, device="meta").eval()
    with torch.no_grad():
        flops, _ = count_flops(model, torch.empty(1, *report.network.input, device="meta"))
    assert flops == 2 * report.macs
    assert sum(p.numel() for p in model.parameters()) == report.params


@pytest.mark.parametrize("name", SPECS)
def test_small_build_trains(name):
    """Build at a small resolution, forward and backward: finite outputs, a gradient for
    every parameter, analytic MACs equal to FlopCounterMode at that size too."""
    torch.manual_seed(0)
    overrides = {"input": "3x32x32", "classes": 10, **SMALL.get(name, {})}
    report = archdsl.analyze(name, **overrides)
    if report.params > 60_000_000:  # keep CI fast: the widest nets run one block per stage
        overrides["depths"] = ",".join("1" for _ in report.network.stages)
        report = archdsl.analyze(name, **overrides)
    model = archdsl.build(name, **overrides)
    x = torch.randn(2, 3, 32, 32)
    flops, y = count_flops(model, x)
    assert flops == 2 * 2 * report.macs  # batch of 2
    assert y.shape == (2, 10) and torch.isfinite(y).all()
    y.logsumexp(1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_checking_and_counting_every_shipped_spec_never_imports_torch():
    script = ("import sys, archdsl\n"
              "from archdsl.lang.specpath import shipped_names\n"
              "for name in shipped_names():\n"
              "    archdsl.analyze(name)\n"
              "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[]"
