"""Runs you can watch: TensorBoard event files read back with TensorBoard's own reader, plain
progress lines when stderr is a pipe, MLflow (its local file store, read back with its client)
and W&B (offline mode, its run file) when a recipe asks for them."""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]
STEP_TAGS = ("train/loss", "train/lr", "perf/images_per_s", "perf/data_wait_pct", "perf/data_wait_s",
             "perf/compute_s")
EPOCH_TAGS = ("epoch/train_loss", "epoch/val_loss", "epoch/val_acc", "epoch/lr", "epoch/images_per_s",
              "epoch/seconds", "epoch/data_wait_pct")


def events(out: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_piped_run_prints_progress_every_n_steps_and_writes_event_files(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    p = subprocess.run([sys.executable, "-m", "archdsl", "train", "convnext_atto", "--data", "digits",
                        "--epochs", "1", "--out", str(out), "--set", "widths=8,16,32,64",
                        "--set", "depths=1,1,1,1", "--set", "train.log_every=4"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = history[-1]["step"]
    assert steps >= 12
    lines = [m for m in re.finditer(r"^epoch 1/1  batch (\d+)/(\d+)  step (\d+)  loss (\S+)  lr (\S+)  "
                                    r"(\d+) img/s  data-wait (\d+\.\d)%$", p.stderr, re.M)]
    assert [int(m[3]) for m in lines] == list(range(4, steps + 1, 4))
    assert all(int(m[1]) == int(m[3]) and int(m[2]) == steps for m in lines)  # one batch a step here
    assert all(0 <= float(m[7]) <= 100 and math.isfinite(float(m[4])) for m in lines)
    assert re.search(r"^epoch 1/1  train_loss .* data-wait \d+\.\d%", p.stderr, re.M)

    acc = events(out)
    scalars = acc.Tags()["scalars"]
    for tag in STEP_TAGS:
        assert [e.step for e in acc.Scalars(tag)] == list(range(4, steps + 1, 4)), tag
    for tag in EPOCH_TAGS:
        assert [e.step for e in acc.Scalars(tag)] == [steps], tag
    assert acc.Scalars("epoch/val_acc")[0].value == pytest.approx(history[0]["val_acc"])
    assert acc.Scalars("epoch/train_loss")[0].value == pytest.approx(history[0]["train_loss"])
    assert set(STEP_TAGS) | set(EPOCH_TAGS) <= set(scalars)
    lr = [e.value for e in acc.Scalars("train/lr")]
    assert all(v > 0 for v in lr)
    texts = {t.split("/text_summary")[0] for t in acc.Tags()["tensors"]}
    assert {"spec/text", "spec/resolved", "spec/parent", "spec/diff_vs_parent", "recipe"} <= texts
    diff = acc.Tensors("spec/diff_vs_parent/text_summary")[0].tensor_proto.string_val[0].decode()
    assert re.search(r"^ +-\s+96\s+convnext x3$", diff, re.M)  # convnext_t's stage ...
    assert re.search(r"^ +\+\s+8\s+convnext x1$", diff, re.M)  # ... and this run's (tiny atto)


def test_progress_interval_counts_optimizer_steps():
    """Unit level: with a pipe for stderr, a line at every log_every-th step and none between."""
    import io

    from rich.console import Console

    from archdsl.training.report import Reporter

    buf = io.StringIO()
    r = Reporter(Path("/nonexistent"), enabled=True, log_every=3, console=Console(file=buf, width=200))
    r.trackers = []  # no tracker files for this check
    r.start_epoch(0, 2, 10)
    for s in range(1, 11):
        r.step(s, 1.0 / s, 1e-3, 100.0, wait_s=0.0, step=s)
    assert re.findall(r"step (\d+) ", buf.getvalue()) == ["3", "6", "9"]

    tty = io.StringIO()  # on a terminal: the live bar, with the data-wait share, and no plain lines
    r = Reporter(Path("/nonexistent"), enabled=True, log_every=3,
                 console=Console(file=tty, width=200, force_terminal=True))
    r.trackers = []
    r.start_epoch(0, 2, 10)
    for s in range(1, 11):
        r.step(s, 1.0 / s, 1e-3, 100.0, wait_s=0.0, step=s)
    r.end_epoch()
    assert re.search(r"10/10.*loss 0\.1000  lr 1\.00e-03  100 img/s  data-wait 0%", tty.getvalue())
    assert "step 3 " not in tty.getvalue()


def test_mlflow_and_wandb_receive_the_run(tmp_path, monkeypatch):
    """The Reporter driven as the engine drives it (begin, steps, an epoch, close), with both
    extra trackers on, read back from MLflow's file store and W&B's offline run file."""
    mlflow = pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    import archdsl
    from archdsl.training.report import Reporter

    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # mlflow 3 keeps the file store on request
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "archdsl-test")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    net = archdsl.load("convnext_atto", classes=10)
    r = Reporter(out, enabled=True, quiet=True, log_every=5, track="mlflow,wandb")
    r.begin(net, net.train, step=0)
    r.start_epoch(0, 1, 12)
    for step in range(1, 13):
        r.step(step, 2.0 - step / 10, 1e-3 * step, 100.0, wait_s=0.01, step=step)
    r.end_epoch()
    row = {"epoch": 1, "step": 12, "train_loss": 1.5, "val_loss": 1.25, "val_acc": 0.75, "lr": 0.012,
           "images_per_s": 100.0, "seconds": 3.0, "data_wait_s": 0.12}
    r.epoch(row, 1, False)
    r.write_files([row])
    r.close()
    ids = json.loads((out / "tracking.json").read_text())

    client = mlflow.tracking.MlflowClient()
    run = client.get_run(ids["mlflow"])
    assert run.info.status == "FINISHED" and run.data.params["network"] == "convnext_atto"
    assert run.data.params["recipe.lr"] == str(net.train.lr)
    loss = client.get_metric_history(run.info.run_id, "train/loss")
    # the epoch's running means 1.5 (step 5) and 1.0 (step 10): batches 1-5 sum 7.5, 6-10 sum 2.5
    assert [(m.step, m.value) for m in loss] == [(5, pytest.approx(1.5)), (10, pytest.approx(0.5))]
    [acc] = client.get_metric_history(run.info.run_id, "epoch/val_acc")
    assert (acc.step, acc.value) == (12, 0.75)
    [wait] = client.get_metric_history(run.info.run_id, "epoch/data_wait_pct")
    assert wait.value == pytest.approx(4.0)
    spec = Path(client.download_artifacts(run.info.run_id, "spec/text.txt", str(tmp_path)))
    assert spec.read_text() == (ROOT / "specs" / "convnext_atto.arch").read_text()

    [wandb_file] = (out / "wandb").glob(f"offline-run-*-{ids['wandb']}/run-{ids['wandb']}.wandb")
    raw = wandb_file.read_bytes()  # protobuf records: keys and texts are stored as UTF-8
    for key in (b"train/loss", b"epoch/val_acc", b"spec/diff_vs_parent", b"network convnext_atto"):
        assert key in raw, key


def test_unknown_or_missing_tracker_is_an_error_before_training(tmp_path, monkeypatch):
    from archdsl.lang.errors import ArchError
    from archdsl.training import tracking

    with pytest.raises(ArchError) as e:
        tracking.requested("wandb,neptune")
    assert e.value.code == "E771" and "neptune" in e.value.message
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed: import fails
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(ArchError) as e:
        tracking.open_trackers(tmp_path, ("mlflow",), name="x", config={})
    assert e.value.code == "E772" and "archdsl[mlflow]" in e.value.hint


def test_resumed_run_drops_the_events_written_after_its_checkpoint(tmp_path):
    """A run killed at step 9 resumes from its checkpoint at step 5: TensorBoard shows each step once."""
    from archdsl.training.tracking import open_trackers

    first = open_trackers(tmp_path, (), name="run", config={})
    for step in range(1, 10):
        first[0].scalars({"train/loss": 1.0}, step)
    first[0].close()
    # TensorBoard orders event files by the second in their names; a resume lands later than that
    time.sleep(1.1)
    second = open_trackers(tmp_path, (), name="run", config={}, step=5)
    for step in range(5, 12):
        second[0].scalars({"train/loss": 2.0}, step)
    second[0].close()
    points = [(e.step, e.value) for e in events(tmp_path).Scalars("train/loss")]
    assert points == [(s, 1.0) for s in range(1, 5)] + [(s, 2.0) for s in range(5, 12)]


def test_without_tensorboard_a_run_says_so_once_and_goes_on(tmp_path, monkeypatch):
    from archdsl.training.tracking import open_trackers

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if not installed
    said = []
    assert open_trackers(tmp_path, (), name="x", config={}, warn=said.append) == []
    assert len(said) == 1 and "archdsl[tensorboard]" in said[0]
    assert not list(tmp_path.iterdir())


def test_a_tracker_failing_mid_run_is_dropped_with_one_warning(tmp_path):
    import io

    from rich.console import Console

    from archdsl.training.report import Reporter
    from archdsl.training.tracking import TensorBoard

    class Gone:  # a tracker whose server went away after the run started
        def scalars(self, values, step):
            raise ConnectionError("tracking server unreachable")

        def text(self, name, text, step=0):
            pass

        def flush(self):
            pass

        def close(self):
            pass

    buf = io.StringIO()
    r = Reporter(tmp_path, enabled=True, quiet=True, log_every=1, console=Console(file=buf, width=300))
    tb = TensorBoard.open(tmp_path)
    r.trackers = [Gone(), tb]
    for step in (1, 2, 3):
        r.step(step, 1.0, 1e-3, 10.0, step=step)
    r.close()
    assert buf.getvalue().count("warning: Gone tracking stopped: ConnectionError") == 1
    assert [e.step for e in events(tmp_path).Scalars("train/loss")] == [1, 2, 3]  # the others go on
