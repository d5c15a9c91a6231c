"""`archdsl export` and `archdsl compile --emit code` from the command line: files that run,
usage errors (exit 2) and write errors (exit 1) without a traceback."""
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from archdsl.cli.main import app


def invoke(*args):
    return CliRunner().invoke(app, list(args))


def test_emit_code_redirected_is_valid_python(tmp_path):
    # a real pipe, not a terminal: the exact text, never wrapped at 80 columns
    done = subprocess.run([sys.executable, "-m", "archdsl", "compile", "convnext_t", "--emit", "code"],
                          capture_output=True, text=True, env=os.environ | {"COLUMNS": "40"})
    assert done.returncode == 0, done.stderr
    compile(done.stdout, "code.py", "exec")
    assert "def forward(self, x" in done.stdout


def test_export_py_writes_a_file_that_runs(tmp_path):
    out = tmp_path / "model.py"
    r = invoke("export", "resnet50", "--to", str(out), "--set", "classes=10", "--set", "input=3x32x32")
    assert r.exit_code == 0, r.output
    assert "torch only" in r.output
    done = subprocess.run([sys.executable, str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0 and "torch.Size([1, 10])" in done.stdout, done.stderr


@pytest.mark.parametrize("to, code, says", [
    ("model.txt", 2, "suffix must be one of .py, .onnx"),
    ("adir", 2, "is a directory"),
    ("missing/model.py", 1, "does not exist"),
    ("[brackets]/m.py", 1, "does not exist"),
])
def test_bad_targets(tmp_path, to, code, says):
    (tmp_path / "adir").mkdir()
    r = invoke("export", "convnext_atto", "--to", str(tmp_path / to))
    assert r.exit_code == code, r.output
    assert says in r.output and "Traceback" not in r.output


def test_unwritable_target(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        r = invoke("export", "convnext_atto", "--to", str(locked / "m.py"))
        if os.access(locked, os.W_OK):  # root writes anywhere: then the file is written
            assert r.exit_code == 0, r.output
        else:
            assert r.exit_code == 1 and "permission denied" in r.output
    finally:
        locked.chmod(0o700)


def test_bracketed_spec_path_and_bad_spec(tmp_path):
    spec = tmp_path / "[odd] name.arch"
    spec.write_text("network odd extends convnext_atto\nclasses 3\ninput 3x32x32\n")
    r = invoke("export", str(spec), "--to", str(tmp_path / "[out].py"))
    assert r.exit_code == 0, r.output
    assert (tmp_path / "[out].py").is_file()
    r = invoke("export", "no_such_spec", "--to", str(tmp_path / "x.py"))
    assert r.exit_code == 1 and "unknown spec" in r.output and "Traceback" not in r.output
