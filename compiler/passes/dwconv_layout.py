"""Train pass for torch.compile: depthwise convs become `ChannelsLastDepthwiseConv2d`, whose
forward and backward inductor cannot re-layout (compiler/dwconv.py says why). The class is
swapped in place: same module path, same parameters, same state dict."""
from __future__ import annotations

from torch import fx

from ..dwconv import ChannelsLastDepthwiseConv2d, is_plain_depthwise


def use_channels_last_dwconv(gm: fx.GraphModule) -> fx.GraphModule:
    for module in gm.modules():
        if is_plain_depthwise(module):
            module.__class__ = ChannelsLastDepthwiseConv2d
    return gm
