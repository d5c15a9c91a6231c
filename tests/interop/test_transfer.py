"""archdsl.transfer: weights carried across an edit, ops paired by the diff's alignment."""
import torch

import archdsl
from archdsl.interop.transfer import op_map, transfer

KW = {"classes": 10, "input": "3x32x32", "widths": "32,64,128,256"}


def trained(name: str) -> torch.nn.Module:
    """A model with non-trivial values everywhere, as if trained."""
    model = archdsl.build(name, **KW)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=g).abs() + 0.5 if key.endswith("running_var")
                        else torch.randn(t.shape, generator=g) * 0.1)
    return model.eval()


def test_kernel_grown_is_zero_padded_and_computes_the_same():
    src = trained("step08")
    model, report = transfer("step08", "step08_k9", src, quiet=True, **KW)
    assert not report.fresh and len(report.exact) + len(report.adapted) == report.total
    assert {e.path.rsplit(".", 2)[-2] for e in report.adapted} == {"dwconv"}
    assert all("kernel 7 -> 9: centre zero-padded" in e.how for e in report.adapted)
    w = model.state_dict()["stages.0.blocks.0.dwconv.weight"]
    assert w.shape[-1] == 9 and torch.equal(w[..., 1:-1, 1:-1], src.state_dict()["stages.0.blocks.0.dwconv.weight"])
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), src(x), rtol=1e-5, atol=1e-5)


def test_kernel_shrunk_is_centre_cropped():
    src = trained("step08_k9")
    model, report = transfer("step08_k9", "step08_k5", src, quiet=True, **KW)
    assert not report.fresh
    w9, w5 = (m.state_dict()["stages.1.blocks.2.dwconv.weight"] for m in (src, model))
    assert torch.equal(w5, w9[..., 2:7, 2:7])


def test_moved_op_keeps_its_weights():
    # step07 moves `dwconv3 stride, bn, relu` ahead of `pwconv 4x`: its conv and its bn
    # change module names and positions, and keep their weights
    mapping = op_map(archdsl.load("step06", **KW), archdsl.load("step07", **KW))
    assert mapping["stages.0.blocks.0.dwconv"] == "stages.0.blocks.0.dwconv"
    assert mapping["stages.0.blocks.0.bn1"] == "stages.0.blocks.0.bn2"   # the dwconv's norm, renumbered
    src = trained("step07")
    model, report = transfer("step07", "step08", src, quiet=True, **KW)
    assert not report.fresh
    assert {e.how for e in report.adapted} == {"kernel 3 -> 7: centre zero-padded"}
    s, d = src.state_dict(), model.state_dict()
    assert torch.equal(d["stages.2.blocks.4.bn1.running_var"], s["stages.2.blocks.4.bn1.running_var"])
    assert torch.equal(d["head.fc.weight"], s["head.fc.weight"])


def test_deeper_network_gets_fresh_blocks_and_keeps_the_rest():
    src = trained("convnext_t")
    model, report = transfer("convnext_t", "convnext_s", src, quiet=True, **KW)
    assert not report.adapted
    fresh = {e.path for e in report.fresh}
    assert fresh and all(p.startswith("stages.2.blocks.") and int(p.split(".")[3]) >= 9 for p in fresh)
    s, d = src.state_dict(), model.state_dict()
    assert len(report.exact) == len(s)
    for key in s:
        assert torch.equal(d[key], s[key]), key
    # the fresh blocks have the spec's init: layer scale at 1e-6, not the source's values
    assert torch.all(d["stages.2.blocks.20.layerscale.gamma"] == 1e-6)
    text = str(report)
    assert "stages.2.blocks.9-26.dwconv.weight" in text and "freshly initialised" in text


def test_widened_and_changed_ops_copy_the_overlap():
    src = trained("step05")
    model, report = transfer("step05", "step06", src, quiet=True, **KW)
    entry = next(e for e in report.adapted if e.path == "stages.0.blocks.1.pwconv1.weight")
    assert entry.source == "stages.0.blocks.1.conv1.weight" and "overlap copied" in entry.how
    old, new = src.state_dict()[entry.source], model.state_dict()[entry.path]
    n, c = min(old.shape[0], new.shape[0]), min(old.shape[1], new.shape[1])
    assert torch.equal(new[:n, :c], old[:n, :c])


def test_grn_added_is_fresh_and_the_rest_transferred():
    src = trained("convnext_t")
    model, report = transfer("convnext_t", "convnextv2_tiny", src, quiet=True, **KW)
    assert not report.adapted
    fresh = {e.path for e in report.fresh}
    assert fresh == {k for k in model.state_dict() if ".grn." in k} and len(fresh) == 2 * 18  # gamma, beta per block
    s, d = src.state_dict(), model.state_dict()
    for e in report.exact:
        assert torch.equal(d[e.path], s[e.source]), e.path
    assert torch.all(d["stages.2.blocks.8.grn.gamma"] == 0)   # GRN's init: identity at the start
    assert torch.equal(d["stages.3.blocks.2.dwconv.weight"], s["stages.3.blocks.2.dwconv.weight"])


def test_gate_added_is_fresh_and_every_source_tensor_kept():
    src = trained("resnet50")
    model, report = transfer("resnet50", "se_resnet50", src, quiet=True, **KW)
    assert not report.adapted
    assert {e.path.split(".")[4] for e in report.fresh} == {"gate"} and len(report.fresh) == 4 * 16  # 2 convs x (w, b)
    s, d = src.state_dict(), model.state_dict()
    assert len(report.exact) == len(s)
    for key in s:
        assert torch.equal(d[key], s[key]), key


def test_gates_pair_with_gates():
    src = trained("se_resnet50")
    model, report = transfer("se_resnet50", "se_resnet50", src, quiet=True, **KW)
    assert not report.fresh and not report.adapted and len(report.exact) == len(src.state_dict())
    s, d = src.state_dict(), model.state_dict()
    for key in s:
        assert torch.equal(d[key], s[key]), key
