"""`archdsl ablate` on a small synthetic chain whose answers are worked out by hand, and on the
shipped roadmap (the dependencies the issue names)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import archdsl
from archdsl.cli import app
from archdsl.roadmap.ablate import ablate, variants
from archdsl.roadmap.chain import roadmap_rows

ROOT = """network s0
input   3x32x32
classes 10

block b {
    residual {
        conv3, bn, relu
    }
}

stem   conv3 8
stages {
    8 b x1
    8 b x1
}
head   gap, linear
"""
STEPS = {
    "s0": ROOT,
    "s1": "network s1 extends s0\n\nblock b {\n    residual {\n        conv3, bn, gelu\n    }\n}\n",  # relu -> gelu
    "s2": "network s2 extends s1\n\nblock b {\n    residual {\n        conv3, bn\n    }\n}\n",  # the gelu s1 added goes
    "s3": "network s3 extends s2\n\nset depths 2,3\n",
}
BLOCK_PARAMS = 8 * 8 * 9 + 2 * 8   # conv3 8->8 (no bias: it feeds a bn) + bn's weight and bias
BLOCK_MACS = 8 * 8 * 9 * 32 * 32   # the conv at 32x32, stride 1


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    d = tmp_path / "chain"
    d.mkdir()
    for name, text in STEPS.items():
        (d / f"{name}.arch").write_text(text)
    return d


def _ops(net) -> list[str]:
    return [o.name.text for o in net.blocks["b"].body[0].body]


def test_changes_of_the_synthetic_chain(chain):
    assert archdsl.change(chain / "s1.arch").summary() == "block b: `relu` -> `gelu` everywhere"
    assert archdsl.change(chain / "s2.arch").summary() == "block b (residual): remove `gelu` from the `conv3` unit"
    assert archdsl.change(chain / "s3.arch").summary() == "set depths 2,3"


def test_leave_one_out_by_hand(chain):
    root, reference, items = variants(chain, "leave-one-out")
    assert (root.name, reference.name) == ("s0", "s3")
    nets = {row.step: net for row, net in items}
    rows = {row.step: row for row, _ in items}
    # without s1 the block keeps its relu, and s2 has no gelu to remove: it needed s1
    assert _ops(nets["s1"]) == ["conv3", "bn", "relu"] and nets["s1"].depths == (2, 3)
    assert len(rows["s1"].depends) == 1 and rows["s1"].depends[0].startswith("s2: no `gelu` to remove")
    # without s2 the gelu stays; nothing depended on s2
    assert _ops(nets["s2"]) == ["conv3", "bn", "gelu"] and rows["s2"].depends == []
    # without s3: one block per stage, not 2 and 3
    assert _ops(nets["s3"]) == ["conv3", "bn"] and nets["s3"].depths == (1, 1)
    ab = ablate(chain)
    by_step = {r.step: r for r in ab.rows}
    assert by_step["s1"].d_params == 0 and by_step["s2"].d_params == 0  # activations have no weights
    assert by_step["s3"].d_params == -3 * BLOCK_PARAMS
    assert by_step["s3"].d_macs == -3 * BLOCK_MACS
    assert ab.reference_params == archdsl.analyze(chain / "s3.arch").params


def test_one_at_a_time_by_hand(chain):
    ab = ablate(chain, mode="one-at-a-time")
    by_step = {r.step: r for r in ab.rows}
    assert ab.reference == "s0"
    assert by_step["s1"].d_params == 0 and by_step["s1"].depends == []
    assert len(by_step["s2"].depends) == 1  # no gelu in s0 to remove
    assert by_step["s3"].d_params == 3 * BLOCK_PARAMS  # 2+3 blocks instead of 1+1


def test_variant_specs_train_roadmap_can_read(chain, tmp_path):
    out = tmp_path / "variants"
    ab = ablate(chain, out=out)
    names = sorted(p.stem for p in out.glob("*.arch"))
    assert names == ["full_chain", "without_s1", "without_s2", "without_s3"]
    _, _, items = variants(chain, "leave-one-out")
    for row, net in items:  # each spec file is the variant, exactly
        assert not archdsl.diff(archdsl.load(out / f"{row.variant}.arch"), net)
    assert not archdsl.diff(archdsl.load(out / "full_chain.arch"), chain / "s3.arch")
    rows = roadmap_rows(out)  # what `archdsl train-roadmap OUT` trains
    assert sorted(r.step for r in rows) == names
    assert (out / "without_s1.arch").read_text().startswith("# s0's chain without s1")
    assert ab.rows[0].path == str(out / "without_s1.arch")


def test_shipped_leave_one_out_names_the_dependencies():
    ab = ablate()
    by_step = {r.step: r for r in ab.rows}
    assert ab.reference == "step13_downsample" and ab.reference_params == archdsl.analyze("convnext_t").params
    needed = {d.split(":")[0] for d in by_step["step04_depthwise"].depends}
    assert "step07_move_up" in needed  # step 07 moves the dwconv that step 04 introduced
    assert by_step["step13_downsample"].params == archdsl.analyze("step12").params  # the chain less its last step
    assert by_step["step01_recipe"].d_params == 0


def test_ablate_command(chain, tmp_path):
    r = CliRunner().invoke(app, ["ablate", str(chain), "--json"], catch_exceptions=False)
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert data["mode"] == "leave-one-out" and [row["step"] for row in data["rows"]] == ["s1", "s2", "s3"]
    r = CliRunner().invoke(app, ["ablate", str(chain), "--mode", "one-at-a-time"], catch_exceptions=False)
    assert r.exit_code == 0 and "only" in r.stdout and "Traceback" not in r.stdout
    r = CliRunner().invoke(app, ["ablate", str(chain), "--mode", "sideways"], catch_exceptions=False)
    assert r.exit_code == 2 and "leave-one-out" in r.stderr
    r = CliRunner().invoke(app, ["ablate", str(tmp_path / "[none]")], catch_exceptions=False)
    assert r.exit_code == 1 and "E201" in r.stderr
    png = tmp_path / "abl.png"
    r = CliRunner().invoke(app, ["ablate", str(chain), "--plot", str(png)], catch_exceptions=False)
    assert r.exit_code == 0 and png.stat().st_size > 1000


def test_a_users_chain_is_named_by_its_own_steps(tmp_path):
    """`needed by` names the later step whole where it is not a `stepNN_...` name."""
    d = tmp_path / "mine"
    d.mkdir()
    names = {"s0": "my_base", "s1": "my_gelu", "s2": "my_no_act", "s3": "my_deeper"}
    for old, new in names.items():
        text = STEPS[old]
        for a, b in names.items():
            text = text.replace(f"network {a}", f"network {b}").replace(f"extends {a}", f"extends {b}")
        (d / f"{new}.arch").write_text(text)
    from archdsl.roadmap.ablate import ablation_table
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(ablation_table(ablate(d)))
    assert "needed by my_no_act (1 edits skipped)" in console.export_text()
