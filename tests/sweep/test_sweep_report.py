"""`archdsl sweep report`: EDFs and marginals computed by hand here, and the CLI on studies
whose trials are written straight into an Optuna storage (no training: the numbers are given)."""
from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

optuna = pytest.importorskip("optuna")

import archdsl  # noqa: E402
from archdsl.cli import app  # noqa: E402
from archdsl.spaces.cost import Coster  # noqa: E402
from archdsl.spaces.sampler import draw_point  # noqa: E402
from archdsl.sweep.report import bootstrap_mean, complexity_bins, edf, normalized_weights  # noqa: E402
from archdsl.sweep.study import open_study, storage  # noqa: E402


def test_edf_steps():
    xs, ys = edf([30.0, 10.0, 20.0, 20.0])
    assert xs == [10.0, 20.0, 20.0, 30.0] and ys == pytest.approx([0.25, 0.5, 0.75, 1.0])


def test_normalized_weights_give_every_complexity_bin_the_same_mass():
    macs = [1e6, 1.1e6, 1.2e6, 9e8]   # three cheap points and one dear one
    edges = complexity_bins(macs, n=2)
    w = normalized_weights(macs, edges)
    assert w == pytest.approx([1 / 6, 1 / 6, 1 / 6, 1 / 2]) and sum(w) == pytest.approx(1)


def test_bootstrap_interval_holds_the_mean_and_narrows_with_more_points():
    rng = random.Random(0)
    few = [rng.gauss(20, 5) for _ in range(5)]
    many = [rng.gauss(20, 5) for _ in range(200)]
    m1, lo1, hi1 = bootstrap_mean(few, random.Random(1))
    m2, lo2, hi2 = bootstrap_mean(many, random.Random(1))
    assert lo1 <= m1 <= hi1 and lo2 <= m2 <= hi2 and (hi2 - lo2) < (hi1 - lo1)


def _study(tmp_path, space: str, name: str, errors: dict):
    """A study of `space` in tmp_path/<name>/study.db whose trials have the given errors."""
    coster = Coster.open(space)
    folder = tmp_path / name
    folder.mkdir()
    store = storage(f"sqlite:///{folder / 'study.db'}")
    study = open_study(store, f"{space}-{coster.space.hash}", coster.space.hash, coster.path)
    rng = random.Random(len(name))
    for i, error in enumerate(errors):
        while True:
            values = draw_point(coster.space, rng)
            try:
                cost = coster.cost(values)
                break
            except archdsl.ArchError:
                continue
        study.add_trial(optuna.trial.create_trial(value=error, user_attrs={
            "values": values, "params": cost.params, "macs": cost.macs, "error": error, "run": str(folder / str(i))}))
    return folder


def test_report_compares_two_studies(tmp_path):
    a = _study(tmp_path, "convnext_space", "cnx", [31.0, 22.0, 40.0, 27.0])
    b = _study(tmp_path, "resnet_space", "res", [35.0, 45.0, 38.0])
    out = tmp_path / "report"
    r = CliRunner().invoke(app, ["sweep", "report", str(a), "--compare", str(b), "-o", str(out), "--json"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    cnx, res = data["studies"]
    assert cnx["points"] == 4 and cnx["error"] == {"min": 22.0, "median": 31.0, "max": 40.0}
    assert cnx["edf"]["error"] == [22.0, 27.0, 31.0, 40.0] and res["edf"]["cumulative"][-1] == pytest.approx(1)
    assert sum(len(rows) and rows[0]["n"] for rows in cnx["marginals"].values()) > 0
    assert all(sum(r["n"] for r in rows) == 4 for rows in cnx["marginals"].values())
    best = cnx["best_specs"][0]
    assert cnx["best"][0]["error"] == 22.0 and archdsl.analyze(best).macs == cnx["best"][0]["macs"]
    page = (out / "index.html").read_text()
    assert "data:image/png;base64," in page and "marginals" in page and (out / "edf.png").stat().st_size > 1000


def test_report_refuses_a_folder_without_a_study(tmp_path):
    r = CliRunner().invoke(app, ["sweep", "report", str(tmp_path), "-o", str(tmp_path / "r")])
    assert r.exit_code == 1 and "error[E783]" in r.stderr and "Traceback" not in r.stderr


def test_report_into_a_file_names_the_file_first(tmp_path):
    """The hostile sweep's last weak case: RUN had no study, and `-o FILE` went unnamed."""
    target = tmp_path / "report.html"
    target.write_text("a user's file")
    r = CliRunner().invoke(app, ["sweep", "report", str(tmp_path / "nothing"), "-o", str(target)])
    assert r.exit_code == 1 and "error[E020]" in r.stderr and str(target) in r.stderr
    assert "is a file" in r.stderr and target.read_text() == "a user's file"
