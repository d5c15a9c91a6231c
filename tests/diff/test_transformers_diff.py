"""The paper's comparison, spec against spec: `diff convnext_t swin_t` and `diff deit_s
convnext_iso_s` pair what plays the same role (the spatial mixer, the channel MLP, norms,
downsampling) and list what only one side has."""
from __future__ import annotations

from typer.testing import CliRunner

import archdsl
from archdsl.cli import app


def texts(d, section: str) -> list[str]:
    return [c.text() for c in d.changes if c.section == section]


def test_convnext_t_against_swin_t_pairs_the_mixer_and_keeps_the_mlp():
    d = archdsl.diff("convnext_t", "swin_t")
    blocks = {(c.kind, c.what): c for c in d.changes if c.section == "blocks"}
    mixer = blocks["changed", "wattn"]
    assert (mixer.before, mixer.after) == ("dwconv7", "wattn7 d32 shift")
    assert "spatial mixer: 7x7 depthwise conv -> 7x7 window attention, 3,6,12,24 heads (shifted on odd blocks)" \
        in mixer.details
    residual = blocks["changed", "residual"]
    assert residual.details[0].startswith("1 -> 2 residual joins")
    # the channel MLP (pwconv 4x, gelu, pwconv 1x) is the same on both sides: not listed
    assert not any(c.what in ("pwconv", "gelu") for c in d.changes if c.section == "blocks")
    assert ("removed", "layerscale") in blocks and ("added", "droppath") in blocks and ("added", "ln") in blocks
    down = texts(d, "downsample")
    assert "added `merge` at the start" in down and "`conv2 s2` -> `pwconv nobias` (stride 2 -> 1; bias default -> off)" \
        in down
    assert d.model.cost_after.params == 28_288_354 and d.model.cost_before.params == 28_589_128


def test_deit_s_against_isotropic_convnext_pairs_global_attention_with_dwconv():
    d = archdsl.diff("deit_s", "convnext_iso_s")
    mixer = next(c for c in d.changes if c.section == "blocks" and c.kind == "changed" and c.what == "dwconv")
    assert (mixer.before, mixer.after) == ("mhsa d64", "dwconv7")
    assert "spatial mixer: global attention, 6 heads -> 7x7 depthwise conv" in mixer.details
    assert {c.before for c in d.changes if c.section == "stem" and c.kind == "removed"} == \
        {"tokens", "clstoken", "posembed"}
    assert "`clspool` -> `gap`" in texts(d, "head")


def test_cli_prints_the_comparison():
    result = CliRunner().invoke(app, ["diff", "convnext_t", "swin_t"])
    assert result.exit_code == 0, result.output
    assert "`dwconv7` -> `wattn7 d32 shift`" in result.output and "28,288,354" in result.output
