"""Every file archdsl writes is written whole or not at all, lands where it should, and never
replaces a good file with a rejected one (issue: no clobbered file)."""
from __future__ import annotations

import errno
from pathlib import Path

import pytest
from typer.testing import CliRunner

import archdsl
import archdsl.atomic
from archdsl.cli import app

runner = CliRunner()
TINY = "network tiny\ninput 3x16x16\nclasses 5\nblock b {\n    conv3\n}\nstages {\n    8 b x1\n}\nhead gap, linear\n"


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def full_disk_after_256b(monkeypatch):
    """The temporary file fills up after 256 bytes, as a full disk does."""
    real_open = open

    class Full:
        def __init__(self, f):
            self.f, self.n = f, 0

        def write(self, data):
            if self.n + len(data) > 256:
                self.f.write(data[:256 - self.n])
                raise OSError(errno.ENOSPC, "No space left on device")
            self.n += len(data)
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(archdsl.atomic, "open", lambda *a, **k: Full(real_open(*a, **k)), raising=False)


def test_apply_onto_a_file_named_unlike_its_network_is_self_contained(tmp_path):
    mine, out = tmp_path / "mine", tmp_path / "out"
    mine.mkdir(), out.mkdir()
    r = run("flatten", "resnet50", "--set", "classes=7", "--set", "depths=1,1,1,1", "-o", mine / "myresnet.arch")
    assert r.exit_code == 0, r.output
    r = run("apply", "step09", "--onto", mine / "myresnet.arch", "-o", out / "g.arch")
    assert r.exit_code == 0, r.output
    text = (out / "g.arch").read_text()
    assert "extends" not in text.split("network g")[1].splitlines()[0] and "self-contained" in text
    got = archdsl.load(out / "g.arch")
    assert got.classes == 7 and got.depths == (1, 1, 1, 1)
    assert archdsl.analyze(got).params == archdsl.analyze(mine / "myresnet.arch").params  # relu->gelu adds none


def test_apply_onto_a_shipped_base_still_extends_it(tmp_path):
    r = run("apply", "step09", "--onto", "step00", "-o", tmp_path / "g.arch")
    assert r.exit_code == 0, r.output
    assert "network g extends step00_resnet50" in (tmp_path / "g.arch").read_text()


def test_output_dash_is_standard_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run("flatten", "convnext_atto", "-o", "-")
    assert r.exit_code == 0 and "network convnext_atto" in r.stdout and not (tmp_path / "-").exists()


def test_fmt_write_on_a_full_disk_keeps_the_source(tmp_path, full_disk_after_256b):
    spec = tmp_path / "big.arch"
    source = archdsl.lang.printer.format_spec(archdsl.lang.resolve.read_spec(
        archdsl.lang.specpath.find_spec("swin_t"))).replace("\n", "\n\n")  # unformatted, > 256 bytes
    spec.write_text(source)
    r = run("fmt", "-w", spec)
    assert r.exit_code == 1 and "No space left" in r.output, r.output
    assert spec.read_text() == source
    assert [p.name for p in tmp_path.iterdir()] == ["big.arch"]  # no temporary left behind


def test_fmt_write_never_overwrites_a_save_that_lands_meanwhile(tmp_path, monkeypatch):
    import archdsl.lang.printer as printer

    spec = tmp_path / "s.arch"
    spec.write_text(TINY.replace("classes 5", "classes   5"))
    real = printer.format_spec
    saved = TINY.replace("classes 5", "classes  9")

    def format_while_an_editor_saves(*a, **k):
        spec.write_text(saved)  # the editor's save lands while fmt formats
        return real(*a, **k)

    monkeypatch.setattr(printer, "format_spec", format_while_an_editor_saves)
    r = run("fmt", "-w", spec)
    assert r.exit_code == 1 and "changed while it was being formatted" in r.output, r.output
    assert spec.read_text() == saved


def test_export_py_on_a_full_disk_keeps_the_previous_file(tmp_path, full_disk_after_256b):
    target = tmp_path / "model.py"
    target.write_text("# the previous export\n")
    r = run("export", "convnext_t", "--to", target)
    assert r.exit_code == 1 and "No space left" in r.output
    assert target.read_text() == "# the previous export\n"


def test_export_to_a_bare_suffix_says_what_to_do():
    r = run("export", "convnext_t", "--to", ".py")
    assert r.exit_code == 2 and "--to model.py" in r.output


def test_onnx_rejected_by_validation_keeps_the_previous_file(tmp_path):
    pytest.importorskip("onnxruntime")
    from archdsl.interop.export_onnx import export_onnx

    model, target = archdsl.build(archdsl.loads(TINY)), tmp_path / "m.onnx"
    target.write_bytes(b"the previous good export")
    with pytest.raises(ValueError, match="differ"):
        export_onnx(model, (3, 16, 16), target, tolerance=-1.0)  # nothing can pass
    assert target.read_bytes() == b"the previous good export"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_onnx_external_weights_go_into_one_file_named_after_the_model(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    import numpy as np
    import torch

    from archdsl.interop.export_onnx import export_onnx

    model = archdsl.build(archdsl.loads(TINY)).eval()
    (tmp_path / "head.fc.weight").write_text("a user's file named like a tensor")
    a = export_onnx(model, (3, 16, 16), tmp_path / "a.onnx", external_data_bytes=0)  # as over 2 GiB
    b = export_onnx(model, (3, 16, 16), tmp_path / "b.onnx", external_data_bytes=0)
    assert a.extra_files == [tmp_path / "a.onnx.data"] and b.extra_files == [tmp_path / "b.onnx.data"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx", "a.onnx.data", "b.onnx", "b.onnx.data",
                                                          "head.fc.weight"]
    assert (tmp_path / "head.fc.weight").read_text() == "a user's file named like a tensor"
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype("float32")
    (got,) = ort.InferenceSession(str(tmp_path / "a.onnx")).run(None, {"x": x})
    with torch.no_grad():
        assert np.allclose(got, model(torch.from_numpy(x)).numpy(), atol=1e-5)


def test_onnx_tolerance_is_relative_to_the_logits(tmp_path):
    pytest.importorskip("onnxruntime")
    import torch

    from archdsl.interop.export_onnx import export_onnx

    model = archdsl.build(archdsl.loads(TINY))
    with torch.no_grad():
        model.get_parameter("head.fc.weight").mul_(1e12)  # logits around 1e11: float32 agrees to ~1e4
    r = export_onnx(model, (3, 16, 16), tmp_path / "big.onnx")
    assert r.max_abs_diff >= 0 and (tmp_path / "big.onnx").exists()
