"""The roadmap as a tree: any directory of specs that extend one another; a spec written by
`archdsl apply` beside the roadmap is a branch; `archdsl roadmap --tree`; `train-roadmap --resume`."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archdsl.cli import app
from archdsl.roadmap import order, roadmap_rows, tree

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_tree_levels():
    parents = {"a": None, "b": "a", "c": "b", "v1": "b", "v1a": "v1", "w": "v1", "v1b": "v1a", "d": "c", "e": "d",
               "f": "e"}
    # v1 branches off the main line at b; v1a continues v1's line; w branches off the branch
    assert tree(parents) == [("a", 0), ("b", 0), ("v1", 1), ("w", 2), ("v1a", 1), ("v1b", 1), ("c", 0), ("d", 0),
                             ("e", 0), ("f", 0)]
    assert order(parents) == [(n, level > 0) for n, level in tree(parents)]


@pytest.fixture(scope="module")
def roadmap_with_branches(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("roadmap")
    for f in (REPO / "specs" / "roadmap").glob("*.arch"):
        shutil.copy(f, d)
    r = runner.invoke(app, ["apply", "step09", "--onto", "step04", "-o", str(d / "my_step09_on_step04.arch")],
                      catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    (d / "my_k3.arch").write_text("network my_k3 extends step08_k5\n\nset invbottleneck.dwconv.kernel 3\n")
    (d / "my_k3b.arch").write_text("network my_k3b extends step08_k5\n\nset invbottleneck.dwconv.kernel 1\n")
    return d


def test_a_user_spec_beside_the_roadmap_is_a_branch(roadmap_with_branches):
    rows = {r.step: r for r in roadmap_rows(roadmap_with_branches)}
    mine = rows["my_step09_on_step04"]
    assert mine.branch and mine.level == 1 and mine.parent == "step04_depthwise"
    assert mine.change == "relu -> gelu x3" and mine.d_params == 0
    assert rows["my_k3"].level == 1 and rows["my_k3"].parent == "step08_k5"  # it continues step08_k5's line
    assert rows["my_k3b"].level == 2 and rows["my_k3b"].parent == "step08_k5"  # a branch off a branch
    assert not rows["step05_widen"].branch  # the main line is unchanged
    names = [r for r in rows]
    assert names.index("my_step09_on_step04") == names.index("step04_depthwise") + 1


def test_cli_tree(roadmap_with_branches):
    r = runner.invoke(app, ["roadmap", str(roadmap_with_branches), "--tree"], catch_exceptions=False)
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    mine = next(line for line in lines if "my_step09_on_step04" in line)
    assert mine.startswith("│   ") and "relu -> gelu x3" in mine and "15.72M params" in mine
    k3 = next(line for line in lines if "my_k3b" in line)
    assert k3.startswith("│   │   ")  # two levels in
    assert "\x1b[" not in r.stdout


def test_cli_table_indents_nested_branches(roadmap_with_branches):
    r = runner.invoke(app, ["roadmap", str(roadmap_with_branches)], catch_exceptions=False)
    assert r.exit_code == 0
    assert "└ my_step09_on_step04" in r.stdout and "  └ my_k3b" in r.stdout


def test_train_roadmap_resume_exists_and_is_passed_on(monkeypatch, tmp_path):
    import archdsl.training as training

    seen = []

    class Result:
        best_acc, history = 0.5, []

    def fake_train(spec, data, **kwargs):
        seen.append(kwargs["resume"])
        return Result()

    monkeypatch.setattr(training, "train", fake_train)
    d = tmp_path / "chain"
    d.mkdir()
    (d / "a.arch").write_text("network a extends convnext_atto\nclasses 10\n")
    for flag, expected in (("--resume", True), ("--no-resume", False)):
        r = runner.invoke(app, ["train-roadmap", str(d), flag, "--out", str(tmp_path / "runs")],
                          catch_exceptions=False)
        assert r.exit_code == 0, r.output
        assert seen[-1] is expected and "50.00" in r.stdout
