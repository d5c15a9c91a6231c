"""A step's change carried onto another base: `apply` warns where the step's absolute depths or
widths overwrite different ones of the new base, and with `carry` the roadmap replayed onto
ResNet-101 or ResNet-152 is a deeper ConvNeXt, not ConvNeXt-T."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

import archdsl
from archdsl.cli import app
from archdsl.diff.change import apply, carry_notes, change

STEPS = ("step01", "step02", "step03", "step04", "step05", "step06", "step07", "step08_kernel7", "step09",
         "step10", "step11", "step12", "step13")


def replay(base: str, carry: bool) -> tuple[archdsl.Network, list[str]]:
    net, notes = archdsl.as_network(base), []
    for step in STEPS:
        patch = change(step)
        notes += [note for _, note in carry_notes(patch, net)]
        net = apply(patch, net, carry=carry)
    return net, notes


def test_the_roadmap_on_resnet101_as_written_is_convnext_t_and_says_so():
    net, notes = replay("resnet101", carry=False)
    assert not archdsl.diff(net, "convnext_t")  # the step's absolute depths won
    assert notes == ["step02_stage_ratio sets depths 3,3,9,3 (from 3,4,6,3); step01_recipe_on_resnet101 has "
                     "3,4,23,3"]


@pytest.mark.parametrize("base,depths", [("resnet101", (3, 3, 34, 3)), ("resnet152", (3, 6, 54, 3))])
def test_the_roadmap_carried_onto_a_deeper_resnet_is_a_deeper_convnext(base, depths):
    net, _ = replay(base, carry=True)
    assert net.depths == depths and net.widths == (96, 192, 384, 768)  # ResNet's widths: ConvNeXt-T's
    text = str(archdsl.diff(net, "convnext_t"))
    assert f"depths {','.join(map(str, depths))} -> 3,3,9,3" in text
    assert archdsl.analyze(net).params > archdsl.analyze("convnext_t").params
    # everything but the depths is ConvNeXt's: the same network as convnext_t with those depths
    assert not archdsl.diff(net, archdsl.as_network("convnext_t", depths=",".join(map(str, depths))))


def test_on_its_own_base_carry_changes_nothing():
    for step in ("step02", "step05", "step06"):
        patch = change(step)
        parent = archdsl.as_network(patch.parent)
        assert not carry_notes(patch, parent)
        assert not archdsl.diff(apply(patch, parent, carry=True), apply(patch, parent))


def test_cli_warns_on_the_steps_line():
    result = CliRunner().invoke(app, ["apply", "step02", "--onto", "resnet101"])
    assert result.exit_code == 0
    assert ("step02_stage_ratio.arch:4:1: warning: step02_stage_ratio sets depths 3,3,9,3 (from 3,4,6,3); "
            "resnet101 has 3,4,23,3") in result.stderr
    assert "set depths 3,3,9,3" in result.stdout
    carried = CliRunner().invoke(app, ["apply", "step02", "--onto", "resnet101", "--carry"])
    assert "set depths 3,3,34,3" in carried.stdout and "3, 3, 34, 3 deep" in carried.stderr
