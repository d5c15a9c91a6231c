"""The channels-last linear (`pwconv` on NHWC data or tokens, `linear`, attention's qkv and
proj) and the kernel it runs on.

On CPU, `F.linear` is a BLAS gemm (MKL in torch's wheels), while a 1x1 convolution over the
same memory goes to oneDNN. The data is already channels-last, so `x` (..., C) read as an
NCHW tensor in channels-last memory is the same bytes: the conv needs no copy, and its
output, read back as (..., C_out), is contiguous. On the development machine (AMD EPYC,
AVX-512) torch's sgemm runs at ~220 GFLOP/s and oneDNN at ~490, and ConvNeXt-T's pointwise
layers took 1.9-2.3x longer forward and 1.6-2.1x longer forward+backward through the gemm
(batch 8, every stage; `benchmarks/bench.py --cases kernels`). The conv is used where it is
oneDNN's (CPU, float32, rows >= MIN_ROWS) and `F.linear` everywhere else: other devices,
bf16 autocast (where torch's gemm is already oneDNN-fast), a few rows (the head), and while
a tracer writes the graph for export (ONNX wants a plain Gemm/MatMul).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MIN_ROWS = 64  # below this the conv's fixed cost outweighs the faster kernel
ONEDNN = torch.backends.mkldnn.is_available()  # read once: torch.compile cannot trace the call


def _use_conv(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32
            and x.dim() >= 2 and x.numel() >= MIN_ROWS * x.shape[-1]
            and not torch.is_autocast_enabled("cpu")
            and ONEDNN and torch.backends.mkldnn.enabled
            and not torch.jit.is_tracing() and not torch.jit.is_scripting()
            and not torch.onnx.is_in_onnx_export() and not torch.compiler.is_exporting())


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x W^T + b over the last axis of x, the same function as `F.linear`."""
    if not _use_conv(x, weight):
        return F.linear(x, weight, bias)
    *lead, c = x.shape
    # (N, H, W, C) keeps its grid; anything else is one row of M "pixels": (1, 1, M, C).
    # Contiguous (N, H, W, C) is channels-last NCHW, which the conv keeps for its output.
    grid = x.contiguous() if x.dim() == 4 else x.reshape(1, 1, -1, c)
    y = F.conv2d(grid.permute(0, 3, 1, 2), weight[:, :, None, None], bias)
    return y.permute(0, 2, 3, 1).reshape(*lead, weight.shape[0])


class Linear(nn.Linear):
    """`nn.Linear` (same parameters, same state dict) whose forward runs `linear` above."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
