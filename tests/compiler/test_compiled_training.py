"""`build(..., compile=True)`: the model is compiled in place (same module, same state dict),
and training through the channels-last depthwise-conv op gives eager's gradients. Traced with
the `aot_eager` backend (dynamo + AOT autograd, no inductor codegen) to stay fast; the inductor
timings live in benchmarks/."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import archdsl
from compiler.dwconv import ChannelsLastDepthwiseConv2d


def test_compiled_train_build_matches_eager_gradients():
    torch.manual_seed(0)
    eager = archdsl.build("convnext_atto", input="3x32x32", depths="1,1,2,1", **{"train.droppath": 0.0})
    compiled = archdsl.build("convnext_atto", input="3x32x32", depths="1,1,2,1", **{"train.droppath": 0.0}, compile={"backend": "aot_eager"})
    compiled.load_state_dict(eager.state_dict())
    assert set(compiled.state_dict()) == set(eager.state_dict())
    assert any(isinstance(m, ChannelsLastDepthwiseConv2d) for m in compiled.modules())
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 1000, (4,))
    for model in (eager, compiled):
        F.cross_entropy(model(x), y).backward()
    for (name, a), b in zip(eager.named_parameters(), compiled.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_channels_last_dwconv_op_matches_conv2d_on_every_map_size():
    torch.manual_seed(0)
    for size, stride in [(16, 1), (7, 1), (16, 2)]:
        ref = nn.Conv2d(8, 8, 7, stride, 3, groups=8)
        op = nn.Conv2d(8, 8, 7, stride, 3, groups=8)
        op.load_state_dict(ref.state_dict())
        op.__class__ = ChannelsLastDepthwiseConv2d
        x = torch.randn(2, 8, size, size)
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yb = ref(xa), op(xb)
        assert yb.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(yb, ya)
        g = torch.randn_like(ya)
        ya.backward(g), yb.backward(g)
        torch.testing.assert_close(xb.grad, xa.grad)
        torch.testing.assert_close(op.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(op.bias.grad, ref.bias.grad, rtol=1e-4, atol=1e-4)
    torch.library.opcheck(torch.ops.archdsl.dwconv, (torch.randn(2, 8, 16, 16, requires_grad=True),
                                                     torch.randn(8, 1, 7, 7, requires_grad=True),
                                                     torch.randn(8, requires_grad=True), 1, 3))


def test_compiled_eval_build_runs():
    model = archdsl.build("convnext_atto", input="3x32x32", depths="1,1,1,1", mode="eval", compile={"backend": "aot_eager"})
    plain = archdsl.build("convnext_atto", input="3x32x32", depths="1,1,1,1", mode="eval", state_dict=None)
    plain.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), plain(x), rtol=1e-5, atol=1e-5)


def test_cli_train_has_compile():
    from typer.testing import CliRunner

    from archdsl.cli import app

    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--compile" in result.output


def test_compiled_build_trains_under_bf16_autocast():
    """The custom depthwise op is opaque to autocast; in a compiled build its bf16 input met the
    fp32 bias inside F.conv2d (`train --compile --precision bf16` failed). It casts as autocast
    casts a conv, so the compiled step matches eager's."""
    net = archdsl.load("convnext_atto", widths="8,16,32,64", depths="1,1,1,1", input="3x32x32", classes=10)
    torch.manual_seed(0)
    eager = archdsl.build(net)
    compiled = archdsl.build(net, compile=True, state_dict=eager.state_dict())
    x = torch.randn(2, 3, 32, 32)
    outs, grads = [], []
    for m in (eager, compiled):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = m(x)
        y.float().square().sum().backward()
        outs.append(y.float())
        grads.append(m.get_parameter("stages.0.blocks.0.dwconv.bias").grad)
    assert grads[1].dtype == torch.float32
    torch.testing.assert_close(outs[1], outs[0], rtol=5e-2, atol=5e-2)
    torch.testing.assert_close(grads[1], grads[0], rtol=5e-2, atol=5e-2)
