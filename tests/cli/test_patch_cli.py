"""`fmt`, `flatten`, `change`, `apply` and `ablate` on bad input: a rendered error and exit 1
(2 for usage errors), never a traceback; plain text when piped."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from archdsl.cli import app

runner = CliRunner()


@pytest.fixture
def odd(tmp_path):
    garbage = tmp_path / "[b]ad name.arch"
    garbage.write_bytes(b"\x00\xff\xfe garbage")
    binary = tmp_path / "[b]inary.json"
    binary.write_bytes(bytes(range(128, 256)))
    broken = tmp_path / "[broken].arch"
    broken.write_text("network x extends convnext_t\nblock convnext {\n")
    return {"garbage": str(garbage), "broken": str(broken), "binary": str(binary), "dir": str(tmp_path / "[no dir]")}


CASES = [
    (["fmt", "{garbage}"], 1, "E201"),
    (["fmt", "{broken}"], 1, "E102"),
    (["fmt", "--check", "--write", "convnext_t"], 2, "exclude"),
    (["flatten", "{broken}"], 1, "E102"),
    (["flatten", "convnext_t", "--set", "depths=1,2"], 1, "E502"),
    (["flatten", "convnext_t", "--set", "input=3x1x1"], 1, "E402"),  # resolves, but does not check
    (["flatten", "convnext_t", "--set", "name=a b"], 1, "E502"),       # a name no spec can say
    (["change", "nope_nope"], 1, "E201"),
    (["apply", "step09", "--onto", "{garbage}"], 1, "E201"),
    (["apply", "{broken}", "--onto", "step00"], 1, "E102"),
    (["apply", "resnet50", "--onto", "step04"], 1, "E907"),
    (["apply", "step00", "--onto", "step04"], 1, "E907"),
    (["apply", "step09", "--onto", "step00", "--name", "9 bad"], 2, "not a network name"),
    (["apply", "step09", "--onto", "step00", "-o", "{dir}/x.arch"], 1, "cannot write"),
    (["apply", "step09"], 2, "--onto"),
    (["apply", "{binary}", "--onto", "step00"], 1, "E905"),
    (["ablate", "{dir}"], 1, "E201"),
    (["ablate", "{garbage}"], 1, "E201"),
    (["ablate", "--mode", "all"], 2, "leave-one-out"),
    (["ablate", "--plot", "x.jpg"], 2, "PNG"),
]


@pytest.mark.parametrize("args,code,text", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_is_an_error_not_a_traceback(odd, args, code, text):
    r = runner.invoke(app, [a.format(**odd) for a in args], catch_exceptions=False)
    assert r.exit_code == code, r.output
    assert text in r.output and "Traceback" not in r.output


def test_piped_output_is_plain():
    for args in (["ablate"], ["fmt", "convnext_t"], ["change", "step07"], ["apply", "step09", "--onto", "step00"]):
        r = runner.invoke(app, args, catch_exceptions=False)
        assert r.exit_code == 0 and "\x1b[" not in r.stdout
