"""`archdsl export SPEC --to model.onnx`: onnx.checker and onnxruntime agree with PyTorch."""
import builtins

import pytest
import torch

import archdsl
from archdsl.cli.main import app
from archdsl.interop.export_onnx import MissingExtra, export_onnx, require
from archdsl.lang.specpath import shipped_names
from small_nets import small
from typer.testing import CliRunner

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

def test_every_shipped_spec_exports_and_runs_in_onnxruntime(tmp_path):
    for name in sorted(shipped_names()):
        net = archdsl.load(name, **small(name))
        model = archdsl.build(net)
        with torch.no_grad():  # non-trivial norms and scales
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        result = export_onnx(model, tuple(net.input), tmp_path / f"{name}.onnx", dynamic_batch=(name == "convnext_t"))
        assert result.max_abs_diff <= 1e-4, name
        onnx.checker.check_model(str(tmp_path / f"{name}.onnx"))


def test_cli_export_onnx_with_dynamic_batch(tmp_path):
    out = tmp_path / "atto.onnx"
    r = CliRunner().invoke(app, ["export", "convnext_atto", "--to", str(out), "--dynamic-batch",
                                 "--set", "input=3x32x32", "--set", "classes=10"])
    assert r.exit_code == 0, r.output
    assert "onnx.checker ok" in r.output and "any batch size" in r.output
    session = ort.InferenceSession(str(out))
    for batch in (1, 5):
        (y,) = session.run(None, {"x": torch.randn(batch, 3, 32, 32).numpy()})
        assert y.shape == (batch, 10)


def test_missing_onnx_is_a_clear_error(tmp_path, monkeypatch):
    real = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name.split(".")[0] in ("onnx", "onnxruntime"):
            raise ImportError(f"No module named '{name}'", name=name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with pytest.raises(MissingExtra):
        require()
    r = CliRunner().invoke(app, ["export", "convnext_atto", "--to", str(tmp_path / "m.onnx")])
    assert r.exit_code == 1
    assert "pip install 'archdsl[export]'" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "m.onnx").exists()
