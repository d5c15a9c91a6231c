"""The inference build: the function-preserving fx passes `compile(..., mode="eval")` runs,
in order, on the unfused train graph put into eval mode.

    remove_identities   drop path, dropout, identity: gone
    fold_batchnorm      conv -> bn  becomes conv with folded weights and bias
    fold_layerscale     linear -> layerscale  becomes linear with gamma folded in, once
    fuse_epilogues      bias, activation and residual add run inside the oneDNN matmul/conv
    to_channels_last    convs on channels-last memory from the input on

State-dict naming (documented in docs/speed.md): convs and linears keep their names; a folded
BatchNorm's `bn*.{weight,bias,running_mean,running_var,num_batches_tracked}` and a folded
`layerscale.gamma` disappear, and a conv that absorbed a BatchNorm gains a `bias`. The model
is in eval mode with `requires_grad` off: it is for inference only."""
from __future__ import annotations

import torch
from torch import fx
from torch.fx.passes.shape_prop import ShapeProp

from .channels_last import to_channels_last
from .drop_identity import remove_identities
from .epilogue import fuse_epilogues
from .fold_bn import fold_batchnorm
from .fold_scale import fold_layerscale

EVAL_PASSES = (remove_identities, fold_batchnorm, fold_layerscale, fuse_epilogues, to_channels_last)


def annotate_shapes(gm: fx.GraphModule, input_shape: tuple[int, ...]) -> None:
    """`tensor_meta` on every node, from a fake batch of one: nothing is computed."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    mode = FakeTensorMode(allow_non_fake_inputs=True)
    device = next(gm.parameters(), torch.empty(0)).device
    with mode:
        x = torch.empty((1, *input_shape), device=device)
    ShapeProp(gm, fake_mode=mode).propagate(x)


def build_for_eval(gm: fx.GraphModule, input_shape: tuple[int, ...], passes=EVAL_PASSES) -> fx.GraphModule:
    gm.eval()
    gm.requires_grad_(False)
    with torch.no_grad():
        annotate_shapes(gm, input_shape)  # once: the passes keep the shapes of what they keep
        for run_pass in passes:
            gm = run_pass(gm)
    return gm
