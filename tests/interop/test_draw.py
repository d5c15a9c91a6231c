"""`archdsl draw`: every shipped spec renders; --diff marks what the diff pairs and changes."""
import matplotlib

matplotlib.use("Agg")

from typer.testing import CliRunner  # noqa: E402

import archdsl  # noqa: E402
from archdsl.cli.main import app  # noqa: E402
from archdsl.interop.draw import draw_diff, draw_network  # noqa: E402
from archdsl.lang.specpath import shipped_names  # noqa: E402


def test_every_shipped_spec_renders(tmp_path):
    for name in sorted(shipped_names()):
        out = tmp_path / f"{name}.png"
        desc = draw_network(name, out)
        assert out.stat().st_size > 10_000, name
        assert "block kind" in desc
    svg = tmp_path / "t.svg"
    draw_network("convnext_t", svg)
    text = svg.read_text()
    for word in ("dwconv7", "pwconv 4x", "96 -&gt; 384", "stage 3: convnext x9", "downsample: ln, conv2 s2"):
        assert word in text, word


def test_diff_marks_the_changes(tmp_path):
    assert "3 moved" in draw_diff("step06", "step07", tmp_path / "d.svg")
    text = (tmp_path / "d.svg").read_text()
    assert "moved (3)" in text and "dwconv3 stride" in text
    desc = draw_diff("resnet50", "convnext_t", tmp_path / "rc.png")
    assert "added" in desc and "removed" in desc and "changed" in desc


def test_cli_draw_usage_errors(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["draw", "convnext_t", "--to", str(tmp_path / "x.pdf")])
    assert r.exit_code == 2 and "suffix" in r.output
    r = runner.invoke(app, ["draw", "--diff", "convnext_t", "--to", str(tmp_path / "x.png")])
    assert r.exit_code == 2 and "two specs" in r.output
    r = runner.invoke(app, ["draw", "step06", "step07", "--diff", "--to", str(tmp_path / "[d].png")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "[d].png").is_file()
    r = runner.invoke(app, ["draw", "nope_spec", "--to", str(tmp_path / "x.png")])
    assert r.exit_code == 1 and "Traceback" not in r.output


def test_new_constructs_are_drawn(tmp_path):
    texts = {}
    for name in ("swin_t", "mobilenet_v2", "se_resnet50"):
        draw_network(name, tmp_path / f"{name}.svg")
        texts[name] = (tmp_path / f"{name}.svg").read_text()
    assert "wattn7 d32 shift" in texts["swin_t"] and "3 heads, 7x7 windows" in texts["swin_t"]
    # drawn where all its ops run (stage 2, t=6; stage 1 has t=1), `tx` read as 6x
    assert "block inverted  (stage 2, width 24)" in texts["mobilenet_v2"]
    assert "if t &gt; 1: 16 -&gt; 96" in texts["mobilenet_v2"] and "conv1 6x in" in texts["mobilenet_v2"]
    assert "residual where" in texts["mobilenet_v2"] and "shapes match" in texts["mobilenet_v2"]
    assert "\u00d7" in texts["se_resnet50"] and "gate: input x branch" in texts["se_resnet50"]
    assert "5 added" in draw_diff("resnet50", "se_resnet50", tmp_path / "se.svg")


def test_a_guard_that_does_not_hold_in_any_stage_is_left_out(tmp_path):
    spec = ("network g\ninput 3x32x32\nblock b(t) {\n    conv3\n    if t > 1 { conv1 tx in, relu }\n}\n"
            "stem conv3 8\nstages {\n    8 b x1 t=1\n}\nhead gap, linear\n")
    draw_network(archdsl.loads(spec), tmp_path / "g.svg")
    svg = (tmp_path / "g.svg").read_text()
    assert "conv3" in svg and "conv1" not in svg and "absent" not in svg
