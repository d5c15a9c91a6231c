"""`tanh`, BatchNorm's `momentum=M`, explicit padding `pN` and average pooling that does not
count padding, each checked against torch.nn.functional on the same input."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import archdsl

SPEC = """network small
input 3x20x20
classes 5
block b {
    conv3, bn eps=1e-3 momentum=0.01, tanh, avgpool3
}
stem conv7 s4 p2 8
stages {
    8 b x1
}
head gap, linear
"""


def test_small_ops_compute_what_torch_does():
    torch.manual_seed(0)
    model = archdsl.build(archdsl.loads(SPEC)).train()
    sd = model.state_dict()
    x = torch.randn(4, 3, 20, 20)
    y = F.conv2d(x, sd["stem.0.weight"], sd["stem.0.bias"], stride=4, padding=2)  # p2, not 7 // 2
    assert y.shape[-1] == 5
    y = F.conv2d(y, sd["stages.0.blocks.0.conv.weight"], None, padding=1)
    mean, var = torch.zeros(8), torch.ones(8)
    y = F.batch_norm(y, mean, var, sd["stages.0.blocks.0.bn.weight"], sd["stages.0.blocks.0.bn.bias"],
                     training=True, momentum=0.01, eps=1e-3)
    y = F.avg_pool2d(torch.tanh(y), 3, 1, 1, count_include_pad=False)
    want = F.linear(y.mean((2, 3)), sd["head.fc.weight"], sd["head.fc.bias"])
    torch.testing.assert_close(model(x), want, rtol=1e-5, atol=1e-5)
    got = model.state_dict()["stages.0.blocks.0.bn.running_mean"]
    torch.testing.assert_close(got, mean)  # momentum 0.01 moved the statistics as torch's did
    assert 0 < got.abs().max() < 0.05


def test_border_window_is_the_mean_of_what_it_covers():
    """count_include_pad=False: a constant map stays constant at the border."""
    model = archdsl.build(archdsl.loads(SPEC.replace("conv3, bn eps=1e-3 momentum=0.01, tanh, avgpool3",
                                                     "avgpool3")), device="cpu").eval()
    pool = model.get_submodule("stages.0.blocks.0.avgpool")
    out = pool(torch.ones(1, 2, 5, 5))
    torch.testing.assert_close(out, torch.ones(1, 2, 5, 5))


@pytest.mark.parametrize("line,code,text", [
    ("stem conv7 s4 p4 8", "E402", "padding 4 is more than half the 7x7 window"),
    ("stem conv7 s4 momentum=0.5 8", "E304", "`conv7` takes no momentum"),
])
def test_misuse_is_an_error(line, code, text):
    with pytest.raises(archdsl.ArchError) as info:
        archdsl.check(archdsl.loads(SPEC.replace("stem conv7 s4 p2 8", line)))
    assert info.value.code == code and text in str(info.value)


def test_padding_counts_into_macs():
    """p0 on a 3x3 conv shrinks the map, and the MACs with it."""
    same = archdsl.analyze(archdsl.loads(SPEC))
    valid = archdsl.analyze(archdsl.loads(SPEC.replace("conv3, bn", "conv3 p0, bn").replace("avgpool3", "avgpool3 p0")))
    assert valid.macs < same.macs
