"""The paper's own numbers: Table 10 of "A ConvNet for the 2020s" (Liu et al., CVPR 2022),
as carried over in ../shared/reference/convnext_paper.md. Nothing here is computed.

FLOPs in the paper are counted with fvcore; archdsl counts MACs (multiply-accumulates of
convs and linears, the torchvision/timm convention). They agree to 0.01 G except where a
row's `note` says why not.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class PaperRow:
    row: str                  # "00" .. "13", "08-k5" for a variant of row 08
    change: str               # the paper's wording
    label: str                # its label in Figure 2
    group: str                # the part of Figure 2 it belongs to
    top1: float               # ImageNet-1K top-1, %
    top1_std: float | None    # over 3 runs, where given
    gflops: float             # as printed
    note: str | None = None   # why the paper's FLOPs differ from MACs


_NORM_NOTE = "a norm swap adds no MACs; the paper's 4.46 is reproduced by neither convention"
_LN_NOTE = "fvcore adds 5 FLOPs per element of every LayerNorm to the MACs"

_MACRO, _RESNEXT, _INVERT, _KERNEL, _MICRO = "macro design", "ResNeXt", "inverted bottleneck", "large kernel", \
    "micro design"

TABLE10: tuple[PaperRow, ...] = (
    PaperRow("00", "ResNet-50, PyTorch recipe (90 ep, SGD)", "ResNet-50", "start", 76.13, None, 4.09),
    PaperRow("01", "enhanced training recipe", "training recipe", "training", 78.82, 0.07, 4.09),
    PaperRow("02", "stage ratio (3,4,6,3) -> (3,3,9,3)", "stage ratio", _MACRO, 79.36, 0.07, 4.53),
    PaperRow("03", '"patchify" stem: 4x4 conv, stride 4', '"patchify" stem', _MACRO, 79.51, 0.18, 4.42),
    PaperRow("04", "depthwise conv (groups = width) in the bottleneck", "depthwise conv", _RESNEXT, 78.28, 0.08,
             2.35),
    PaperRow("05", "increase width 64 -> 96 (stem and bottleneck)", "width ↑", _RESNEXT, 80.50, 0.02, 5.27),
    PaperRow("06", "inverting dimensions (inverted bottleneck, 4x hidden)", "inverting dims", _INVERT, 80.64, 0.03,
             4.64),
    PaperRow("07", "move up depthwise conv", "move ↑ d. conv", _KERNEL, 79.92, 0.08, 4.07),
    PaperRow("08-k5", "kernel size -> 5 (variant of 08)", "kernel size → 5", _KERNEL, 80.35, 0.08, 4.10),
    PaperRow("08", "kernel size -> 7", "kernel size → 7", _KERNEL, 80.57, 0.14, 4.15),
    PaperRow("08-k9", "kernel size -> 9 (variant of 08)", "kernel size → 9", _KERNEL, 80.57, 0.06, 4.21),
    PaperRow("08-k11", "kernel size -> 11 (variant of 08)", "kernel size → 11", _KERNEL, 80.47, 0.11, 4.29),
    PaperRow("09", "ReLU -> GELU", "ReLU → GELU", _MICRO, 80.62, 0.14, 4.15),
    PaperRow("10", "fewer activations (one GELU per block)", "fewer activations", _MICRO, 81.27, 0.06, 4.15),
    PaperRow("11", "fewer norms (one norm per block, after the depthwise conv)", "fewer norms", _MICRO, 81.41,
             0.09, 4.15),
    PaperRow("12", "BN -> LN", "BN → LN", _MICRO, 81.47, 0.09, 4.46, _NORM_NOTE),
    PaperRow("13", "separate downsampling layers (= ConvNeXt-T)", "sep. d.s. conv", _MICRO, 81.97, 0.06, 4.49,
             _LN_NOTE),
)

# Reference points the paper draws in Figure 2.
SWIN_T = {"top1": 81.30, "gflops": 4.50,
          "note": "the papers give Swin-T's FLOPs to one decimal (4.5G)"}
RESNET50 = {"top1": 76.13, "gflops": 4.09}

_BY_ROW = {r.row: r for r in TABLE10}
_STEP = re.compile(r"step(\d+)(?:_(k\d+))?(?=_|$)")


def row_id(spec_name: str) -> str | None:
    """`step08_kernel7` -> "08", `step08_k5` -> "08-k5"; None for a name that is not a step."""
    m = _STEP.match(spec_name)
    if not m:
        return None
    return f"{int(m.group(1)):02d}" + (f"-{m.group(2)}" if m.group(2) else "")


def paper_row(spec_name: str) -> PaperRow | None:
    rid = row_id(spec_name)
    return _BY_ROW.get(rid) if rid else None
