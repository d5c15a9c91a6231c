"""The command behaves in a shell: the real entry point in a fresh process, stdout a real pipe
(CliRunner captures into a buffer and cannot show what a pipe does)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import archdsl

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "COLUMNS": "100", "PYTHONPATH": str(REPO)}


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "archdsl", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**ENV, **env})


def test_version():
    p = run("--version")
    assert p.returncode == 0 and p.stdout == f"archdsl {version('archdsl')}\n" and p.stderr == ""


def test_list_matches_published_counts():
    """Parameter counts as the papers and torchvision/timm publish them (not computed here)."""
    p = run("list", "--json")
    assert p.returncode == 0, p.stderr
    rows = {r["name"]: r for r in json.loads(p.stdout)}
    published = {"convnext_t": 28_589_128, "resnet50": 25_557_032, "resnet18": 11_689_512,
                 "swin_t": 28_288_354, "deit_s": 22_050_664, "mobilenet_v2": 3_504_872}
    for name, params in published.items():
        assert rows[name]["params"] == params, name
    assert rows["convnext_t"]["family"] == "convnext" and rows["resnet101"]["family"] == "resnet"
    assert rows["convnextv2_atto"]["family"] == "convnextv2" and rows["step05_widen"]["family"] == "roadmap"
    families = {n: rows[n]["family"] for n in ("convnext_b_384", "poolformer_s12", "mixer_s16",
                                               "resnext50_32x4d", "resnet50_retinanet", "mobilenet_v2")}
    assert families == {"convnext_b_384": "convnext", "poolformer_s12": "poolformer", "mixer_s16": "mixer",
                        "resnext50_32x4d": "resnext", "resnet50_retinanet": "resnet",  # extends resnet50
                        "mobilenet_v2": "mobilenet_v2"}
    assert rows["convnext_s"]["extends"] == "convnext_t" and rows["convnext_t"]["extends"] is None
    assert 4.4e9 < rows["convnext_t"]["macs"] < 4.5e9  # the paper's 4.5 GFLOPs (multiply-adds)
    table = run("list", "swin*")
    assert table.returncode == 0
    names = [line.split()[0] for line in table.stdout.splitlines()[1:]]
    assert names == ["swin_b", "swin_s", "swin_t"]
    assert re.search(r"swin_t\s+swin\s+3x224x224\s+28\.29\s+4\.49", table.stdout)


def test_piped_table_keeps_every_cell_whole():
    p = run("compile", "swin_t", "--emit", "layers")
    assert p.returncode == 0, p.stderr
    assert "…" not in p.stdout
    lines = p.stdout.splitlines()
    report = archdsl.analyze("swin_t")
    body = lines[3:3 + len(report.layers)]
    assert len(body) == len(report.layers)  # one line per layer: nothing wrapped onto a second line
    for line, layer in zip(body, report.layers):
        cells = [c.strip() for c in line.split("│")]
        assert cells[0] == layer.path and cells[1].startswith(layer.op)
    assert any("stages.3.blocks.1.attn" in line and "wattn (7x7 windows (the map: no shift), 24 heads)" in line for line in body)


def test_closed_pipe_ends_quietly():
    """The reader is gone before the first write: every write fails with EPIPE."""
    for args in (["compile", "convnext_t", "--emit", "layers"], ["diff", "resnet50", "convnext_t"]):
        proc = subprocess.Popen([sys.executable, "-m", "archdsl", *args], cwd=REPO, env=ENV,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0 and stderr == "", (args, stderr)


def test_head_in_a_pipeline():
    """The issue's own command line, under bash."""
    shell = (f"{sys.executable} -m archdsl compile convnext_t --emit layers | head -1; "
             "echo ${PIPESTATUS[0]} >&2")
    p = subprocess.run(["bash", "-c", shell], cwd=REPO, capture_output=True, text=True, timeout=120, env=ENV)
    assert p.stdout.startswith("convnext_t ") and p.stdout.count("\n") == 1
    assert p.stderr.strip() in ("0", "141"), p.stderr


def test_diff_exit_code():
    differ = run("diff", "step05", "step06", "--exit-code")
    assert differ.returncode == 1 and "pwconv 4x" in differ.stdout and differ.stderr == ""
    same = run("diff", "convnext_t", "convnext_t", "--exit-code")
    assert same.returncode == 0 and "no difference" in same.stdout
    assert run("diff", "step05", "step06").returncode == 0  # without the flag a difference is no failure


@pytest.mark.parametrize("command", [[], ["train"], ["flatten"], ["sweep"], ["sweep", "run"], ["data"], ["data", "pack"]])
def test_help_reads_as_prose(command):
    p = run(*command, "--help", COLUMNS="200")
    assert p.returncode == 0
    for noise in ("<str>", "<bool>", "<int", "<path>", "list[str]", "{spec}", "9223372036854775807"):
        assert noise not in p.stdout, noise
    if command == ["flatten"]:  # its docstring breaks a line after "every"
        assert "no `extends`, every block, the `set` lines" in p.stdout
    if command == ["train"]:
        assert "Usage: archdsl train [OPTIONS] SPEC" in p.stdout


def test_shell_completion_offers_specs():
    p = run(_ARCHDSL_COMPLETE="complete_bash", COMP_WORDS="archdsl compile convnext_", COMP_CWORD="2")
    assert p.returncode == 0 and "convnext_t" in p.stdout.split() and "resnet50" not in p.stdout
    p = run(_ARCHDSL_COMPLETE="complete_bash", COMP_WORDS="archdsl diff specs/roadmap/step0", COMP_CWORD="2")
    assert "specs/roadmap/step05_widen.arch" in p.stdout.split()
    # the shell named, not detected from the parent processes (there may be none in CI)
    p = run("--show-completion", "bash", _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    assert p.returncode == 0 and "_ARCHDSL_COMPLETE=complete_bash" in p.stdout, p.stderr
