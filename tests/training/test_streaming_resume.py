"""Streaming training on real image files: a run killed with SIGKILL mid-epoch resumes at the
sample where it stopped and ends bit-identical to an uninterrupted run (an ImageFolder of
generated JPEGs and the same images as tar shards, 2 DataLoader workers, the full recipe:
RandomResizedCrop, flip, RandAugment, erasing, Mixup/CutMix); a bad image mid-training stops
with a resumable checkpoint or is skipped and logged; a checkpoint knows its data and its values."""
import io
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from archdsl.lang.errors import ArchError, DataError, TrainError
from archdsl.training import checkpoint as ckpt, train

ROOT = Path(__file__).resolve().parents[2]
# 24 train images, batch 4: 6 batches an epoch; a checkpoint every 2 steps
RUN = dict(epochs=2, quiet=True, input="3x32x32", widths="8,16,32,64", depths="1,1,1,1",
           train_batch=4, train_workers=2, train_checkpoint_every=2, train_lr=2e-3)


def make_jpegs(root: Path, per_class=(12, 4)) -> Path:
    rng = np.random.default_rng(0)
    for split, n in zip(("train", "val"), per_class):
        for c, colour in (("red", (200, 40, 40)), ("blue", (40, 40, 200))):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                a = np.clip(rng.normal(colour, 40, (30, 40, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(a).save(d / f"{i:02d}.jpg", quality=90)
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_jpegs(tmp_path_factory.mktemp("jpegs") / "data")


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


KILL_AT_STEP = textwrap.dedent("""
    import os, signal, sys
    from archdsl.training import report, train
    real = report.Reporter.step
    def step_then_die(self, *a, step=None, **k):
        if step == 5:  # epoch 1, batch 5 of 6; the last checkpoint is step 4 (sample 16)
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, *a, step=step, **k)
    report.Reporter.step = step_then_die
    train("convnext_atto", sys.argv[1], out=sys.argv[2], **eval(sys.argv[3]))
""")


@pytest.fixture
def one_thread():
    """The killed run trains in a subprocess with one thread; the runs it is compared with must
    too: a float sum split over another number of threads rounds differently."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("kind", ["folder", "shards"])
def test_sigkill_mid_epoch_resumes_at_the_sample_bit_identical(folder, tmp_path, kind, one_thread):
    data = str(folder)
    if kind == "shards":
        from archdsl.data.pack import pack
        pack(folder, tmp_path / "shards", shard_size=5)
        data = str(tmp_path / "shards")
    whole = train("convnext_atto", data, out=tmp_path / "whole", **RUN)
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", KILL_AT_STEP, data, str(out), repr(RUN)], env=env,
                       timeout=600, capture_output=True, text=True)
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    assert ckpt.latest(out).name == "step-00000004"
    _, state, _ = ckpt.load(ckpt.latest(out))
    assert state["data_order"]["position"] == 16 and state["data"]["files"] == 32
    resumed = train("convnext_atto", data, out=out, resume=True, **{**RUN, "quiet": False})
    assert same(resumed.model.state_dict(), whole.model.state_dict())
    assert resumed.history == [{**r, "seconds": h["seconds"], "images_per_s": h["images_per_s"],
                                "data_wait_s": h["data_wait_s"]}
                               for r, h in zip(whole.history, resumed.history)]


ONE = {**RUN, "epochs": 1}


def test_resume_on_other_data_needs_force(folder, tmp_path, capsys):
    out = tmp_path / "run"
    train("convnext_atto", str(folder), out=out, **ONE)  # a finished run, as train-roadmap reuses
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    (other / "train" / "red" / "00.jpg").rename(other / "train" / "red" / "99.jpg")
    with pytest.raises(TrainError, match=r"other data \(path .*; fingerprint ") as e:
        train("convnext_atto", str(other), out=out, resume=True, **ONE)
    assert e.value.code == "E756" and "--force" in e.value.hint
    r = train("convnext_atto", str(other), out=out, resume=True, force=True, **ONE)
    assert r.history[-1]["epoch"] == 1 and "on other data" in capsys.readouterr().err


def test_a_bad_image_stops_with_a_resumable_checkpoint_or_is_skipped(folder, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(folder, data)
    bad = data / "train" / "blue" / "03.jpg"
    bad.write_bytes(bad.read_bytes()[:300])  # a truncated JPEG: the header opens, the pixels do not
    out = tmp_path / "run"
    with pytest.raises(DataError) as e:
        train("convnext_atto", str(data), out=out, **ONE)
    assert e.value.code == "E702" and str(bad) in e.value.message and "resumable" in e.value.message
    assert "--skip-bad-images" in e.value.hint
    assert ckpt.newest_verified(out) is not None  # saved before stopping
    r = train("convnext_atto", str(data), out=out, resume=True, skip_bad_images=True, **ONE)
    assert r.history[-1]["epoch"] == 1 and sum(h["bad_images"] for h in r.history) >= 1
    assert str(bad) in (out / "bad_images.txt").read_text()


def rehash(step_dir: Path, state: dict) -> None:
    """Rewrite state.pt and its manifest entry, as a hostile user would."""
    buf = io.BytesIO()
    torch.save(state, buf)
    (step_dir / ckpt.STATE).write_bytes(buf.getvalue())
    import hashlib, json
    m = json.loads((step_dir / ckpt.MANIFEST).read_text())
    m["files"][ckpt.STATE] = {"sha256": hashlib.sha256(buf.getvalue()).hexdigest(), "bytes": len(buf.getvalue())}
    (step_dir / ckpt.MANIFEST).write_text(json.dumps(m))


TINY_DIGITS = dict(epochs=1, quiet=True, widths="8,16,32,64", depths="1,1,1,1")


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "run"
    train("convnext_atto", "digits", out=out, **TINY_DIGITS)
    return out


@pytest.mark.parametrize("field,value", [("batch", 10 ** 6), ("epoch", -3), ("best_acc", float("nan")),
                                         ("step", 99), ("world", 0)])
def test_out_of_range_state_values_are_refused(digits_run, tmp_path, field, value):
    out = tmp_path / "run"
    shutil.copytree(digits_run, out)
    tiny = TINY_DIGITS
    step_dir = ckpt.latest(out)
    _, state, _ = ckpt.load(step_dir)
    rehash(step_dir, {**state, field: value})
    with pytest.raises(TrainError) as e:
        train("convnext_atto", "digits", out=out, resume=True, **tiny)
    assert e.value.code == "E752" and field in e.value.message


def test_a_renamed_step_directory_is_not_newest_and_bad_outs_are_refused(digits_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(digits_run, out)
    tiny = TINY_DIGITS
    step_dir = ckpt.latest(out)
    os.rename(step_dir, step_dir.with_name("step-99999999"))
    assert "not the 99999999 of its name" in ckpt.verify(out / "checkpoints" / "step-99999999")
    for bad in ("", out / "checkpoints" / "step-99999999", out / "checkpoints"):
        with pytest.raises(ArchError, match="current directory|inside the checkpoints") as e:
            train("convnext_atto", "digits", out=bad, **tiny)
        assert e.value.code == "E760"


STOP_AT_STEP = textwrap.dedent("""
    import os, signal, sys
    from archdsl.training import report, train
    real = report.Reporter.step
    def step_then_signal_the_group(self, *a, step=None, **k):
        if step == 3:  # as `timeout`, SLURM or a terminal do: every process of the group, workers too
            os.killpg(os.getpgrp(), signal.SIGTERM)
        return real(self, *a, step=step, **k)
    report.Reporter.step = step_then_signal_the_group
    from archdsl.training.engine import Interrupted
    try:
        train("convnext_atto", sys.argv[1], out=sys.argv[2], **eval(sys.argv[3]))
    except Interrupted as e:  # what the CLI does
        sys.exit(e.exit_code)
""")


def test_sigterm_to_the_process_group_saves_and_stops_with_workers(folder, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", STOP_AT_STEP, str(folder), str(out), repr(RUN)], env=env,
                       timeout=600, capture_output=True, text=True, start_new_session=True)
    assert p.returncode == 128 + signal.SIGTERM, p.stderr[-2000:]
    assert "Traceback" not in p.stderr and ckpt.latest(out).name == "step-00000004"  # the next step saves


def test_a_bad_val_image_stops_after_the_epochs_training_and_resumes_into_its_evaluation(folder, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(folder, data)
    bad = data / "val" / "red" / "01.jpg"
    bad.write_bytes(b"")
    out = tmp_path / "run"
    one = {**RUN, "epochs": 1}
    with pytest.raises(DataError, match="cannot decode val image") as e:
        train("convnext_atto", str(data), out=out, **one)
    assert str(bad) in e.value.message and ckpt.latest(out).name == "step-00000006"
    r = train("convnext_atto", str(data), out=out, resume=True, skip_bad_images=True, **one)
    assert r.history[-1]["bad_images"] == 1 and r.history[-1]["step"] == 6


def test_a_run_of_one_process_resumes_mid_epoch_on_two(tmp_path):
    """The rest of the epoch's order is split again over the new world size; the run says so and
    ends where the one-process run would (22 steps: 1,437 digits, batch 64)."""
    out = tmp_path / "run"
    args = dict(epochs=1, quiet=True, widths="8,16,32,64", depths="1,1,1,1", train_checkpoint_every=5)
    whole = train("convnext_atto", "digits", out=out, **args)
    shutil.rmtree(ckpt.latest(out))  # leave step 20: mid-epoch, sample 1,280 of 1,437
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
                        "-m", "archdsl", "train", "convnext_atto", "--data", "digits", "--epochs", "1",
                        "--out", str(out), "--resume", "--set", "widths=8,16,32,64", "--set", "depths=1,1,1,1",
                        "--set", "train.checkpoint_every=5"],
                       env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
                       capture_output=True, text=True, timeout=600, start_new_session=True)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "resuming a run of 1 process(es) on 2: the rest of epoch 1 (from sample 1280)" in p.stderr
    _, state, _ = ckpt.load(ckpt.latest(out))
    assert state["world"] == 2 and state["step"] == whole.history[-1]["step"] == 22


def test_a_process_that_trained_with_workers_exits(folder, tmp_path):
    """The persistent workers ignore SIGTERM (so a signal to the group reaches the loop first);
    left running after train() returned, multiprocessing's exit handler waited on them forever
    and the process that trained never exited. The trainer shuts them down itself."""
    code = ("import sys, multiprocessing as mp\nfrom archdsl.training import train\n"
            f"train('convnext_atto', {str(folder)!r}, out={str(tmp_path / 'run')!r}, **{{**{RUN!r}, 'epochs': 1}})\n"
            "print('children', len(mp.active_children()))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", code], env=env, timeout=300, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "children 0" in p.stdout


def test_ddp_skips_a_batch_that_one_process_lost_entirely_to_bad_images(tmp_path):
    """With --skip-bad-images on 2 processes, a process whose whole batch was bad has no backward
    pass to run; DDP's gradient all-reduce on the other used to wait for it forever. Both skip
    that batch now. 24 of 32 train images are empty files, batch 4 (2 a process): most steps
    leave some process nothing."""
    data = make_jpegs(tmp_path / "data", per_class=(16, 4))
    for p in sorted((data / "train").rglob("*.jpg"))[:24]:
        p.write_bytes(b"")
    out = tmp_path / "run"
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
                        "-m", "archdsl", "train", "convnext_atto", "--data", str(data), "--epochs", "1",
                        "--out", str(out), "--skip-bad-images", "--set", "input=3x32x32",
                        "--set", "widths=8,16,32,64", "--set", "depths=1,1,1,1", "--set", "train.batch=4",
                        "--set", "train.workers=0"],
                       env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
                       capture_output=True, text=True, timeout=300, start_new_session=True)
    assert p.returncode == 0, p.stderr[-3000:]
    _, state, _ = ckpt.load(ckpt.latest(out))
    assert state["world"] == 2 and state["step"] == 8
    logged = (out / "bad_images.txt").read_text().splitlines()
    assert len(logged) == 24
