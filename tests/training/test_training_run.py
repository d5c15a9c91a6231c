"""End-to-end training on digits with a tiny ConvNeXt: it learns, files appear, a run killed
with SIGKILL or stopped with SIGTERM resumes to bit-identical weights, divergence stops cleanly,
and two gloo processes under torchrun complete."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from archdsl.lang.errors import ArchError, TrainError
from archdsl.training import checkpoint as ckpt
from archdsl.training import load_checkpoint, train

TINY = {"widths": "8,16,32,64", "depths": "1,1,1,1"}
TINY_SET = ["--set", "widths=8,16,32,64", "--set", "depths=1,1,1,1"]
ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "archdsl", "train", "convnext_atto", "--data", "digits", "--quiet",
            *TINY_SET, *args]


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def run_group(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run a command in its own process group; on timeout kill the whole group (torchrun's
    workers included) rather than leave orphans behind."""
    proc = subprocess.Popen(args, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_short_run_learns_and_writes_its_files(tmp_path):
    r = train("convnext_atto", "digits", epochs=2, out=tmp_path, quiet=True, train_lr=4e-3, **TINY)
    h = r.history
    assert [row["epoch"] for row in h] == [1, 2]
    assert set(h[0]) >= {"epoch", "train_loss", "val_loss", "val_acc", "lr", "images_per_s",
                         "val_acc_ema"}
    assert h[1]["train_loss"] < h[0]["train_loss"] < 2.3  # below chance (ln 10) and falling
    assert h[1]["val_acc"] > 0.5
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows == h
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert r.checkpoint.is_file() and r.best.is_file()
    assert same_weights(load_checkpoint(tmp_path), {k: v for k, v in r.model.state_dict().items()})
    assert r.recipe.batch == 64 and r.recipe.mixup == 0  # digits' short-run recipe
    assert any("warm-up" in n for n in r.notes)


def test_existing_run_needs_resume(tmp_path):
    train("convnext_atto", "digits", epochs=1, out=tmp_path, quiet=True, **TINY)
    with pytest.raises(TrainError, match="already holds a run") as e:
        train("convnext_atto", "digits", epochs=1, out=tmp_path, quiet=True, **TINY)
    assert "--resume" in e.value.hint
    with pytest.raises(TrainError, match="different settings: lr"):
        train("convnext_atto", "digits", epochs=1, out=tmp_path, quiet=True, resume=True,
              train_lr=0.1, **TINY)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 2-epoch run with a checkpoint every 4 steps."""
    out = tmp_path_factory.mktemp("reference")
    subprocess.run(cli("--epochs", "2", "--out", str(out), "--set", "train.checkpoint_every=4"),
                   env=env(), check=True, timeout=300)
    return out


def wait_for_checkpoint(out: Path, proc: subprocess.Popen, step: int) -> None:
    deadline = time.time() + 120
    while time.time() < deadline:
        steps = ckpt.all_steps(out)
        if steps and int(steps[-1].name.split("-")[1]) >= step:
            return
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.005)
    raise AssertionError("no checkpoint appeared")


def test_sigkill_and_resume_gives_identical_weights(reference, tmp_path):
    args = cli("--epochs", "2", "--out", str(tmp_path), "--set", "train.checkpoint_every=4")
    proc = subprocess.Popen(args, env=env())
    wait_for_checkpoint(tmp_path, proc, 12)  # mid-way through epoch 1 (22 steps an epoch)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    killed_at = ckpt.latest(tmp_path).name
    subprocess.run(args + ["--resume"], env=env(), check=True, timeout=300)
    assert same_weights(load_checkpoint(tmp_path), load_checkpoint(reference)), killed_at
    a = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (reference / "metrics.jsonl").read_text().splitlines()]
    assert [(r["val_acc"], r["train_loss"]) for r in a] == [(r["val_acc"], r["train_loss"]) for r in b]


def test_sigterm_saves_exits_cleanly_and_resumes_identically(reference, tmp_path):
    args = cli("--epochs", "2", "--out", str(tmp_path), "--set", "train.checkpoint_every=4")
    proc = subprocess.Popen(args, env=env(), stderr=subprocess.PIPE, text=True)
    wait_for_checkpoint(tmp_path, proc, 28)  # in epoch 2
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err and "--resume" in err and "Traceback" not in err
    subprocess.run(args + ["--resume"], env=env(), check=True, timeout=300)
    assert same_weights(load_checkpoint(tmp_path), load_checkpoint(reference))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    with pytest.raises(TrainError, match=r"loss became (nan|inf)") as e:
        train("convnext_atto", "digits", epochs=2, out=tmp_path, quiet=True, train_optimizer="sgd",
              train_lr=10, train_momentum=0.99, train_checkpoint_every=1, **TINY)
    assert e.value.code == "E757" and "last good checkpoint" in e.value.message
    good = load_checkpoint(tmp_path)
    assert all(torch.isfinite(v).all() for v in good.values() if v.is_floating_point())


def test_cli_errors_are_one_message_not_a_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "archdsl", "train", "convnext_atto", "--data",
                        str(tmp_path / "missing"), "--out", str(tmp_path / "o")],
                       env=env(), capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert "error[E701]" in p.stderr and "does not exist" in p.stderr and "Traceback" not in p.stderr


def test_two_gloo_processes_under_torchrun(tmp_path):
    out = tmp_path / "ddp"
    p = run_group([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                   "--standalone", "-m", "archdsl", "train", "convnext_atto", "--data", "digits",
                   *TINY_SET, "--epochs", "1", "--out", str(out), "--set", "train.accumulate=2"],
                  timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "2 processes" in p.stderr
    assert p.stderr.count("epoch 1/1") == 1  # rank 0 reports alone
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["val_acc"] > 0.2
    state = ckpt.load(ckpt.latest(out))[1]
    assert state["world"] == 2 and len(state["ranks"]) == 2


def test_api_takes_a_dataset_pair(tmp_path):
    from torch.utils.data import TensorDataset

    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 32, 32, generator=g)
    y = (x.mean((1, 2, 3)) > 0.5).long()
    train_ds, val_ds = TensorDataset(x[:48], y[:48]), TensorDataset(x[48:], y[48:])
    r = train("convnext_atto", (train_ds, val_ds), epochs=1, out=tmp_path, quiet=True,
              train_batch=16, **TINY)
    assert r.network.classes == 2 and r.network.input == (3, 32, 32)
    with pytest.raises(ArchError):
        train("convnext_atto", (train_ds, val_ds), epochs=1, out=tmp_path / "b", quiet=True,
              train_batch=4096, **TINY)


def test_train_roadmap_adds_a_measured_column(tmp_path):
    steps = tmp_path / "steps"
    steps.mkdir()
    (steps / "tiny_a.arch").write_text("network tiny_a extends convnext_atto\n"
                                  "stages {\n 8 convnext x1\n 16 convnext x1\n 32 convnext x1\n 64 convnext x1\n}\n")
    (steps / "tiny_b.arch").write_text("network tiny_b extends tiny_a\nset convnext.dwconv.kernel 3\n")
    p = subprocess.run([sys.executable, "-m", "archdsl", "train-roadmap", str(steps), "--epochs", "1",
                        "--out", str(tmp_path / "runs")], env=env(), capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "digits top-1 (1 ep)" in p.stdout and "tiny_a" in p.stdout and "tiny_b" in p.stdout
    assert (tmp_path / "runs" / "tiny_b" / "metrics.jsonl").is_file()
