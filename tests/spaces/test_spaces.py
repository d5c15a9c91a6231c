"""Design spaces: the shipped spaces against things archdsl did not compute (torchvision's
RegNetX-400MF count, the RegNet paper's quantization written out here, the built module's
parameters and FlopCounterMode), the fast costing against the whole analysis, sampling."""
from __future__ import annotations

import json
import math
import random
import subprocess
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

import archdsl
from archdsl.cli import app
from archdsl.lang.errors import ArchError
from archdsl.lang.specpath import shipped_names, shipped_spaces
from archdsl.spaces.cost import Coster, analyze_network
from archdsl.spaces.sample import parse_window, sample
from archdsl.spaces.sampler import count_points, draw_point

SPACES = sorted(shipped_spaces())
X400MF = {"w0": 24, "wa": 24.48, "wm": 2.54, "depth": 22, "gw": 16}


def test_spaces_are_shipped_but_not_among_the_point_specs():
    assert {"regnetx_space", "convnext_space", "resnet_space"} <= set(SPACES)
    assert not set(SPACES) & set(shipped_names())


def test_regnetx_400mf_from_the_space_is_torchvisions():
    report = archdsl.analyze("regnetx_space", **X400MF)
    assert report.params == 5_495_976  # torchvision.models.regnet_x_400mf
    assert report.network.widths == (32, 64, 160, 400) and report.network.depths == (1, 2, 7, 12)


def paper_widths_depths(w0: int, wa: float, wm: float, depth: int, gw: int):
    """The RegNet paper's quantized linear widths (pycls's generate_regnet), then torchvision's
    width/group compatibility (_make_divisible with its 90% rule), written from the papers'
    formulas with plain floats, independently of the spec language."""
    block = []
    for j in range(depth):
        u = w0 + wa * j
        s = round(math.log(u / w0) / math.log(wm))
        block.append(int(round(w0 * wm ** s / 8)) * 8)
    widths, depths = [], []
    for w in block:  # widths never fall: each new width starts a stage
        if widths and widths[-1] == w:
            depths[-1] += 1
        else:
            widths.append(w)
            depths.append(1)
    adjusted = []
    for w in widths:
        g = min(gw, w)
        v = max(g, int(w + g / 2) // g * g)
        if v < 0.9 * w:
            v += g
        adjusted.append(v)
    return adjusted, depths


def test_regnet_stage_widths_and_depths_follow_the_paper_for_random_values():
    coster = Coster.open("regnetx_space")
    rng = random.Random(7)
    checked = 0
    while checked < 60:
        values = draw_point(coster.space, rng)
        widths, depths = paper_widths_depths(**values)
        if len(widths) != 4 or values["gw"] > values["w0"]:  # the space's two constraints
            with pytest.raises(ArchError, match="E174|does not hold"):
                coster.network(values)
            continue
        net = coster.network(values)
        assert (list(net.widths), list(net.depths)) == (widths, depths), values
        checked += 1


@pytest.mark.parametrize("name", SPACES)
def test_fast_costs_equal_the_whole_analysis(name):
    coster = Coster.open(name)
    rng = random.Random(1)
    compared = 0
    for _ in range(200):
        values = draw_point(coster.space, rng)
        try:
            fast = coster.cost(values, drawn=True)
        except ArchError:
            continue
        if compared < 12:
            whole, _ = analyze_network(coster.network(values))
            assert fast == whole, values
            compared += 1
    assert coster.piecewise and compared == 12


@pytest.mark.parametrize("name", SPACES)
def test_sampled_points_match_the_built_module(name):
    """Analytic params and MACs of sampled points (at 64x64, 10 classes) against the built
    module's parameter count and FlopCounterMode / 2 on the meta device."""
    coster = Coster.open(name, {"input": "3x64x64", "classes": 10})
    result = sample(coster, 2, seed=3, params=(0, 30e6))
    assert len(result.points) == 2
    for values, cost in result.points:
        net = coster.network(values)
        model = archdsl.build(net, device="meta").eval()
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(torch.empty(1, 3, 64, 64, device="meta"))
        assert counter.get_total_flops() == 2 * cost.macs
        assert sum(p.numel() for p in model.parameters()) == cost.params


def test_costing_points_never_imports_torch():
    script = ("import sys, random\n"
              "from archdsl.spaces.cost import Coster\n"
              "from archdsl.spaces.sampler import draw_point\n"
              "for name in ('convnext_space', 'regnetx_space'):\n"
              "    c = Coster.open(name)\n"
              "    rng = random.Random(0)\n"
              "    for _ in range(30):\n"
              "        try:\n"
              "            c.cost(draw_point(c.space, rng))\n"
              "        except Exception as e:\n"
              "            assert getattr(e, 'code', '') == 'E174', e\n"
              "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[]"


def test_sampling_is_reproducible_and_inside_the_window():
    coster = Coster.open("convnext_space")
    window = parse_window("2G:2.5G", "macs")
    a = sample(coster, 4, seed=5, macs=window)
    b = sample(Coster.open("convnext_space"), 4, seed=5, macs=window)
    assert [v for v, _ in a.points] == [v for v, _ in b.points]
    assert all(2e9 <= c.macs <= 2.5e9 for _, c in a.points)
    assert a.drawn > len(a.points)  # some drawn points fell outside


def test_failing_combinations_are_skipped_counted_and_located():
    coster = Coster.open("resnet_space")
    result = sample(coster, 40, seed=0)
    assert result.failures > 0
    failure = next(iter(result.failed.values()))
    assert failure.error.code == "E401" and failure.error.span.path.endswith("resnet_space.arch")
    v = failure.values
    assert (v["w"] * v["b"]) % v["g"] != 0  # the combination named is one whose groups do not divide


def test_a_space_of_10_to_the_30_points_is_sampled_not_enumerated(tmp_path):
    lets = "\n".join(f"    v{i} = choice(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)" for i in range(30))
    spec = tmp_path / "huge.arch"
    spec.write_text(f"network huge extends resnet18\nlet {{\n{lets}\n    w = choice(32, 64)\n}}\n"
                    "input 3x32x32\nstages {\n    {w} basic x1\n}\n")
    coster = Coster(archdsl.lang.resolve.load_chain(archdsl.lang.resolve.read_spec(spec)))
    assert count_points(coster.space) == 2 * 10**30
    result = sample(coster, 2, seed=0)
    assert len(result.points) == 2 and result.drawn < 100


def test_cli_space_sample_and_refusals(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["space", "resnet_space", "-n", "40"], catch_exceptions=False)
    assert r.exit_code == 0 and "points: 7,290" in r.stdout and "do not check" in r.stdout
    r = runner.invoke(app, ["sample", "convnext_space", "-n", "2", "--macs", "1G:2G", "--seed", "4",
                            "-o", str(tmp_path / "pts")], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    index = json.loads((tmp_path / "pts" / "points.json").read_text())
    point = tmp_path / "pts" / index["points"][0]["file"]
    text = point.read_text()
    assert text.startswith(f"# point of space {index['space_hash']}\n# values: ")
    report = archdsl.analyze(str(point))  # self-contained: compiles as it is, at the recorded cost
    assert report.macs == index["points"][0]["macs"] and 1e9 <= report.macs <= 2e9
    r = runner.invoke(app, ["sample", "convnext_space", "-n", "2", "--macs", "90G:", "-o", str(tmp_path / "x")])
    assert r.exit_code == 1 and "does not reach the macs window 90G" in r.stderr and "Traceback" not in r.stderr
    assert "points drawn range from" in r.stderr
    r = runner.invoke(app, ["check", "regnetx_space"])
    assert r.exit_code == 1 and "error[E170]" in r.stderr and "regnetx_space.arch:11:5" in r.stderr


def test_training_plans_a_point_of_a_space_from_its_values():
    from archdsl.training.plan import plan

    p = plan("regnetx_space", "digits", **X400MF)
    assert p.network.widths == (32, 64, 160, 400) and p.network.values["w0"] == 24
    with pytest.raises(ArchError, match="4 values are open"):
        plan("regnetx_space", "digits", w0=24)


def test_asking_for_more_points_than_a_space_holds_is_refused():
    with pytest.raises(ArchError, match="holds 1 point .nothing in it is open.; 2 were asked for"):
        sample(Coster.open("convnext_t"), 2, seed=0)
    with pytest.raises(ArchError, match="holds 7,290 points; 8,000 were asked for"):
        sample(Coster.open("resnet_space"), 8000, seed=0)
