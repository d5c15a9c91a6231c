"""A depthwise conv whose forward and backward are opaque to inductor and run on
channels-last memory, as eager does.

Why: inductor lowers `convolution_backward` as a fallback whose inputs get whatever layout
the fused kernel in front of it picked. Behind ConvNeXt's permute + LayerNorm backward that
is an N,H,C,W order (strides like (C*H*W, W, C*W, 1)): neither NCHW nor NHWC, so oneDNN
runs the slow reference path (ConvNeXt-T, batch 8: 42 ms per stage-1 dwconv backward
compiled vs 16-18 ms eager). As a custom op the inputs keep their stride order
(`needs_fixed_stride_order`) and the op states the layout itself.

It runs channels-last on every map: measured alone (batch 8, fp32, fresh inputs, freed memory
kept), the channels-last backward is faster at every ConvNeXt-T stage: 14.3 / 6.8 / 3.4 /
2.2 ms against NCHW's 38.4 / 26.8 / 9.7 / 5.4 ms (56x56 ... 7x7). A channels-last output is
also what the permute to NHWC after a dwconv wants."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CL = torch.channels_last


def _out_shape(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int) -> list[int]:
    k = weight.shape[-1]
    return [x.shape[0], weight.shape[0], *((d + 2 * padding - k) // stride + 1 for d in x.shape[-2:])]


@torch.library.custom_op("archdsl::dwconv", mutates_args=())
def dwconv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int,
           padding: int) -> torch.Tensor:
    y = F.conv2d(x.contiguous(memory_format=CL), weight, bias, stride, padding, 1, x.shape[1])
    return y.contiguous(memory_format=CL)


@dwconv.register_fake
def _(x, weight, bias, stride, padding):
    return x.new_empty(_out_shape(x, weight, stride, padding)).contiguous(memory_format=CL)


@torch.library.custom_op("archdsl::dwconv_backward", mutates_args=())
def dwconv_backward(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, has_bias: bool, stride: int,
                    padding: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gx, gw, gb = torch.ops.aten.convolution_backward(
        grad.contiguous(memory_format=CL), x.contiguous(memory_format=CL), weight, [weight.shape[0]],
        [stride] * 2, [padding] * 2, [1, 1], False, [0, 0], x.shape[1], [True, True, has_bias])
    return gx.contiguous(memory_format=CL), gw.contiguous(), gb if has_bias else weight.new_zeros(weight.shape[0])


@dwconv_backward.register_fake
def _(grad, x, weight, has_bias, stride, padding):
    return (torch.empty_like(x, memory_format=CL), torch.empty_like(weight, memory_format=torch.contiguous_format),
            weight.new_empty(weight.shape[0]))


def _setup(ctx, inputs, output):
    x, weight, bias, stride, padding = inputs
    ctx.save_for_backward(x, weight)
    ctx.has_bias, ctx.stride, ctx.padding = bias is not None, stride, padding


def _backward(ctx, grad):
    x, weight = ctx.saved_tensors
    gx, gw, gb = dwconv_backward(grad, x, weight, ctx.has_bias, ctx.stride, ctx.padding)
    return gx, gw, gb if ctx.has_bias else None, None, None


dwconv.register_autograd(_backward, setup_context=_setup)
# A custom op is opaque to autocast: under torch.compile its bf16 input met the fp32 weight and
# bias inside F.conv2d. Cast them as autocast casts a conv's inputs (eager got this from the
# F.conv2d call itself; compiled code calls the op outside any autocast context).
for _device in ("cpu", "cuda"):
    torch.library.register_autocast("archdsl::dwconv", _device, torch.bfloat16)


class ChannelsLastDepthwiseConv2d(nn.Conv2d):
    """An nn.Conv2d (same parameters, same state dict) whose forward is the op above."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dwconv(x, self.weight, self.bias, self.stride[0], self.padding[0])


def is_plain_depthwise(m: nn.Module) -> bool:
    """Square kernel, equal strides and paddings, no dilation, zero padding, groups == channels."""
    return (type(m) is nn.Conv2d and m.groups == m.in_channels == m.out_channels
            and m.padding_mode == "zeros" and not isinstance(m.padding, str)
            and len(set(m.kernel_size)) == 1 and len(set(m.stride)) == 1 and len(set(m.padding)) == 1
            and m.dilation == (1, 1))
