"""Nothing from a spec, a path or the command line is read as rich markup, and control
characters are shown escaped; OS errors are located user errors (exit 1), not tracebacks."""
import errno
import os

import pytest
from typer.testing import CliRunner

from archdsl.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_markup_in_set_names_and_paths_prints_literally(tmp_path):
    d = tmp_path / "d[/x]"
    d.mkdir(parents=True)
    spec = d / "s[v2].arch"
    spec.write_text("network n_v2 extends convnext_atto\nclasses 10\n")
    r = invoke("check", str(spec), "--set", "name=[/x][bold]x")
    assert r.exit_code == 0 and "ok: [/x][bold]x (" in r.stdout and "s[v2].arch" in r.stdout
    r = invoke("compile", str(spec), "--set", "name=a[v2]")
    assert r.exit_code == 0 and r.stdout.startswith("a[v2]  (")
    r = invoke("compile", "convnext_atto", "--set", "name=[/x]", "--emit", "layers")
    assert r.exit_code == 0 and "[/x]" in r.stdout
    r = invoke("diff", "convnext_atto", str(spec), "--set", "name=[/x]")
    assert r.exit_code == 0 and "[/x] -> [/x]" in r.stdout
    r = invoke("roadmap", "--plot", str(d / "p[v2].png"))
    assert r.exit_code == 0 and f"wrote {d / 'p[v2].png'}" in r.stdout
    r = invoke("check", str(d / "missing[/x].arch"))
    assert r.exit_code == 1 and "missing[/x].arch" in r.stderr


def test_control_characters_are_escaped(tmp_path):
    spec = tmp_path / "ansi.arch"
    spec.write_text("network n extends convnext_atto\nclasses \x1b[31m10\n")
    r = invoke("check", str(spec))
    assert r.exit_code == 1 and "\x1b" not in r.stderr
    assert " 2 | classes \\x1b[31m10\n   |         ^^^^" in r.stderr  # the caret spans the escape
    r = invoke("check", "convnext_atto", "--set", "name=a\x1b[2Jb\u202ec")
    assert r.exit_code == 0 and "\x1b" not in r.stdout and "a\\x1b[2Jb\\u202ec" in r.stdout


def test_os_errors_name_the_path_and_the_cause(tmp_path, monkeypatch):
    long = "a/" * 2500 + "x.arch"
    r = invoke("check", long)
    assert r.exit_code == 1 and "error[E201]" in r.stderr and "too long" in r.stderr.lower()
    (tmp_path / "file").write_text("")
    r = invoke("roadmap", "--plot", str(tmp_path / "file" / "p.png"))  # under a file: ENOTDIR
    assert r.exit_code == 1 and "error[E020]" in r.stderr and str(tmp_path / "file") in r.stderr


ARGS = ["train", "convnext_atto", "--data", "digits", "--quiet", "--set", "widths=8,16,32,64",
        "--set", "depths=1,1,1,1", "--epochs", "1"]


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory):
    out = tmp_path_factory.mktemp("fs") / "run"
    assert invoke(*ARGS, "--out", str(out)).exit_code == 0
    return out


@pytest.mark.parametrize("code,word", [(errno.ENOSPC, "ENOSPC"), (errno.EROFS, "EROFS"),
                                        (errno.EACCES, "EACCES"), (errno.ENODEV, "ENODEV")])
def test_a_failing_filesystem_is_an_error_and_keeps_the_previous_checkpoint(one_epoch, tmp_path, monkeypatch,
                                                                             code, word):
    """Simulated by making os.replace fail the way a full, read-only or vanished disk does
    (monkeypatched: no tmpfs needed). A resume's first write (best.safetensors, re-derived
    from the checkpoint) fails: exit 1 with error[E759], the checkpoint still verifies."""
    import shutil

    from archdsl.training import checkpoint as ckpt

    out = tmp_path / "run"
    shutil.copytree(one_epoch, out)
    first = ckpt.latest(out)
    real = os.replace

    def failing(src, dst, *a, **k):
        raise OSError(code, os.strerror(code), str(dst))

    monkeypatch.setattr(os, "replace", failing)
    r = invoke(*ARGS, "--out", str(out), "--resume")
    monkeypatch.setattr(os, "replace", real)
    assert r.exit_code == 1, r.stderr
    assert "error[E759]" in r.stderr and word in r.stderr and str(out) in r.stderr
    assert "Traceback" not in r.stderr
    assert ckpt.latest(out) == first and ckpt.verify(first) is None
    assert not list(out.glob(".*.tmp-*"))


def test_a_line_of_twenty_thousand_faults_renders_fifty_around_their_carets(tmp_path):
    """Each fault once printed the whole 180 kB line (2 GB of output for a hostile `taps` line);
    now 50 are rendered, each with a window of its line, and the rest counted."""
    from typer.testing import CliRunner

    from archdsl.cli import app

    spec = tmp_path / "h.arch"
    spec.write_text("network h extends convnext_atto\ntaps " + ", ".join(["stages.9"] * 20_000) + "\n")
    r = CliRunner().invoke(app, ["check", str(spec)])
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    assert len(r.stderr) < 60_000 and r.stderr.count("error[E413]") == 50
    assert "... and 19950 more errors" in r.stderr
    first, line, caret = r.stderr.split("\n\n")[20].splitlines()[:3]  # the 21st fault, far along the line
    col = int(first.split(":")[2])
    assert line.startswith(" 2 | ...") and line.endswith("...")
    at = caret.index("^")
    assert line[at:at + len("stages.9")] == "stages.9" and col > 120
