"""Changes as patches: every roadmap step's change, applied to the step it extends, gives the
step back exactly; a change survives JSON; it applies by role elsewhere; a change that does
not fit is a located error (golden fixtures in `patch_conflicts/`, regenerated with
`UPDATE_GOLDEN=1`: each `NAME.arch` is a step whose first line says `# onto: BASE`)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import archdsl
from archdsl.cli import app
from archdsl.diff.change import change, parent_of
from archdsl.lang.patch import Patch, PatchError, apply_patch, child_spec
from archdsl.lang.printer import format_spec

REPO = Path(__file__).resolve().parents[2]
STEPS = sorted((REPO / "specs" / "roadmap").glob("step*.arch"))[1:]  # step00 extends resnet50 and changes nothing
FIXTURES = Path("tests/lang/patch_conflicts")
CONFLICTS = sorted(p.stem for p in (REPO / FIXTURES).glob("*.arch"))
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)


@pytest.mark.parametrize("path", STEPS, ids=lambda p: p.stem)
def test_apply_change_to_parent_gives_the_step(path, tmp_path):
    step = archdsl.load(path)
    parent = parent_of(step)
    patch = change(step)
    assert patch and patch.parent == parent.name
    result, conflicts = apply_patch(patch, parent)
    assert not conflicts
    assert not archdsl.diff(result, step), archdsl.diff(result, step)
    # and written as a spec that extends the parent, read back, it is still the step
    text = format_spec(child_spec(result, parent, "again"), layout=False)
    assert f"extends {parent.name}" in text
    spec = tmp_path / "again.arch"
    spec.write_text(text)
    assert not archdsl.diff(archdsl.loads(text, path=path.parent / "again.arch"), step)


@pytest.mark.parametrize("path", STEPS, ids=lambda p: p.stem)
def test_change_json_round_trip(path):
    patch = change(path)
    assert Patch.from_json(patch.to_json()) == patch
    assert Patch.from_json(patch.to_json(indent=None)) == patch


def test_changes_read_as_the_paper_says():
    assert str(change("step09")).splitlines()[1:] == ["  block invbottleneck: `relu` -> `gelu` everywhere"]
    assert change("step08").summary() == "set invbottleneck.dwconv.kernel 7"
    assert change("step07").summary() == \
        "block invbottleneck (residual): move the `dwconv3 stride` unit ahead of `pwconv 4x`"
    assert change("step02").summary() == "set depths 3,3,9,3"
    assert [e.kind for e in change("step10").edits] == ["remove", "remove"]
    assert change("step09") == change("step09") and change("step09") != change("step10")


def test_relu_to_gelu_applies_by_role_to_resnet50():
    net = archdsl.apply("step09", "step00")
    body = format_spec(child_spec(net, archdsl.load("step00"), "x"), layout=False)
    assert "relu" not in body.split("block bottleneck")[1] and body.count("gelu") == 3
    d = archdsl.diff("step00", net)
    assert {c.section for c in d.changes} == {"blocks"} and all(c.after == "gelu" for c in d.changes)
    assert net.stem == archdsl.load("step00").stem  # the stem's ReLU is not the block's: left alone


def test_kernel_applies_without_the_inverted_bottleneck():
    net = archdsl.apply("step08", "step04")
    ops = [o.name.text for o in net.blocks["bottleneck"].body[0].body]
    assert "dwconv7" in ops and "pwconv" not in ops
    r = CliRunner().invoke(app, ["apply", "step08", "--onto", "step04"], catch_exceptions=False)
    assert r.exit_code == 0
    assert "extends step04_depthwise" in r.stdout and "set bottleneck.dwconv.kernel 7" in r.stdout


def test_apply_writes_a_spec_that_compiles(tmp_path):
    out = tmp_path / "gelu_resnet.arch"
    r = CliRunner().invoke(app, ["apply", "step09", "--onto", "step00", "-o", str(out)], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    text = out.read_text()
    assert text.startswith("# step09_gelu's change applied to step00_resnet50")
    assert "network gelu_resnet extends step00_resnet50" in text
    net = archdsl.load(out)
    assert archdsl.analyze(net).params == archdsl.analyze("step00").params  # GELU has no weights


def test_patch_from_json_file(tmp_path):
    f = tmp_path / "gelu.json"
    f.write_text(change("step09").to_json())
    r = CliRunner().invoke(app, ["apply", str(f), "--onto", "step04"], catch_exceptions=False)
    assert r.exit_code == 0 and "gelu" in r.stdout
    f.write_text("{not json")
    r = CliRunner().invoke(app, ["apply", str(f), "--onto", "step04"], catch_exceptions=False)
    assert r.exit_code == 1 and "E905" in r.stderr and "Traceback" not in r.stderr


def test_nonstrict_apply_reports_and_goes_on():
    net, conflicts = apply_patch(change("step10"), archdsl.load("step04"), strict=False)
    assert [c.code for c in conflicts] == ["E902", "E902"]
    assert net.blocks == archdsl.load("step04").blocks  # nothing else to do: the block is as it was
    with pytest.raises(archdsl.ArchError) as e:
        apply_patch(change("step10"), archdsl.load("step04"))
    assert all(isinstance(err, PatchError) for err in e.value.errors) and len(e.value.errors) == 2


@pytest.mark.parametrize("name", CONFLICTS)
def test_conflict_golden(name):
    spec = FIXTURES / f"{name}.arch"
    onto = spec.read_text().split("\n", 1)[0].removeprefix("# onto:").strip()
    r = CliRunner().invoke(app, ["apply", str(spec), "--onto", onto], catch_exceptions=False)
    assert r.exit_code == 1 and r.stdout == "" and "Traceback" not in r.stderr
    expected = REPO / FIXTURES / f"{name}.expected"
    if UPDATE:
        expected.write_text(r.stderr)
    assert r.stderr == expected.read_text()


def test_a_train_value_that_does_not_fit_is_a_conflict_not_a_crash():
    from archdsl.lang.patch import Edit, apply_patch

    bad = archdsl.change("step09").model_copy(update={"edits": (Edit(kind="set", key="train.lr", text="-5"),)})
    net, conflicts = apply_patch(bad, archdsl.load("step00_resnet50"), strict=False)
    assert net == archdsl.load("step00_resnet50")
    assert len(conflicts) == 1 and "`set train.lr -5` does not fit" in conflicts[0].message
