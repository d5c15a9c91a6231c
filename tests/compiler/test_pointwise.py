"""`compiler.pointwise.linear`: the channels-last linear that runs as oneDNN's 1x1 conv on CPU
gives `F.linear`'s values and gradients, takes the conv only where it should, and leaves
export and autocast to the plain gemm."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import archdsl
from compiler import pointwise

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="needs oneDNN (mkldnn)")


class AtenOps(TorchDispatchMode):
    """The names of the aten ops run inside it."""

    def __init__(self):
        super().__init__()
        self.names: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def ops_of(fn) -> set[str]:
    with AtenOps() as mode:
        fn()
    return mode.names


@pytest.mark.parametrize("shape", [(2, 9, 11, 24), (3, 50, 24), (130, 24), (2, 24, 11, 9)])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_path_gives_linear_values_and_gradients(shape, bias):
    torch.manual_seed(0)
    x = torch.randn(shape)
    if shape == (2, 24, 11, 9):  # a channels-last view of NCHW memory: not contiguous
        x = x.permute(0, 2, 3, 1)
    w, b = torch.randn(40, 24), (torch.randn(40) if bias else None)
    assert pointwise._use_conv(x, w)
    xa, wa = x.clone().requires_grad_(), w.clone().requires_grad_()
    xb, wb = x.clone().requires_grad_(), w.clone().requires_grad_()
    ba = b.clone().requires_grad_() if bias else None
    bb = b.clone().requires_grad_() if bias else None
    expected, got = F.linear(xa, wa, ba), pointwise.linear(xb, wb, bb)
    assert got.shape == expected.shape and got.is_contiguous() == expected.is_contiguous()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(expected)
    expected.backward(g), got.backward(g)
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(wb.grad, wa.grad, rtol=1e-4, atol=1e-4)
    if bias:
        torch.testing.assert_close(bb.grad, ba.grad, rtol=1e-4, atol=1e-4)


def test_conv_runs_where_it_should_and_gemm_elsewhere():
    w = torch.randn(40, 24)
    big, few = torch.randn(4, 8, 8, 24), torch.randn(8, 24)
    assert "convolution" in ops_of(lambda: pointwise.linear(big, w))
    assert "convolution" not in ops_of(lambda: pointwise.linear(few, w))   # the head: rows < MIN_ROWS
    assert "convolution" not in ops_of(lambda: pointwise.linear(big.double(), w.double()))
    with torch.autocast("cpu", dtype=torch.bfloat16):                      # bf16: torch's gemm
        assert "convolution" not in ops_of(lambda: pointwise.linear(big, w))


def test_built_models_take_the_conv_and_onnx_sees_a_plain_gemm(tmp_path):
    model = archdsl.build("convnext_atto", input="3x32x32", depths="1,1,1,1", classes=10).eval()
    with torch.no_grad():
        assert "convolution" in ops_of(lambda: model.get_submodule("stages.0.blocks.0.pwconv1")(torch.randn(2, 8, 8, 40)))
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from archdsl.interop.export_onnx import export_onnx

    export_onnx(model, (3, 32, 32), tmp_path / "m.onnx")
    kinds = [n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node]
    assert kinds.count("Conv") == 1 + 3 + 4          # stem, downsamples, depthwise convs: no pointwise
    assert "MatMul" in kinds or "Gemm" in kinds


def test_torch_compile_traces_a_whole_network_without_a_graph_break():
    import torch._dynamo

    model = archdsl.build("convnext_atto", input="3x32x32", depths="1,1,1,1", classes=10)
    torch._dynamo.reset()
    explained = torch._dynamo.explain(model)(torch.randn(2, 3, 32, 32))
    assert explained.graph_break_count == 0, [b.reason for b in explained.break_reasons]
