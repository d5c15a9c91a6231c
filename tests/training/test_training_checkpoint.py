"""Checkpoints are written atomically and load without unpickling arbitrary objects."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from archdsl.lang.errors import TrainError
from archdsl.training import checkpoint as ckpt
from archdsl.training import load_checkpoint
from archdsl.training.state import rng_state, set_rng_state


def weights(v: float) -> dict:
    return {"a.weight": torch.full((4, 3), v), "b.bias": torch.arange(5.0) + v}


def test_save_latest_and_load(tmp_path):
    state = {"epoch": 1, "rng": rng_state(), "history": [{"epoch": 1, "val_acc": 0.5}]}
    ckpt.save(tmp_path, 10, weights(1.0), state, ema_sd=weights(2.0))
    ckpt.save(tmp_path, 20, weights(3.0), state)
    ckpt.save(tmp_path, 30, weights(4.0), state)
    assert [p.name for p in ckpt.all_steps(tmp_path)] == ["step-00000020", "step-00000030"]  # keeps 2
    model, loaded, ema = ckpt.load(ckpt.latest(tmp_path))
    assert torch.equal(model["a.weight"], weights(4.0)["a.weight"]) and ema is None
    assert loaded["history"] == state["history"]
    assert torch.equal(load_checkpoint(tmp_path)["b.bias"], weights(4.0)["b.bias"])


def test_same_step_saved_twice_replaces_it(tmp_path):
    ckpt.save(tmp_path, 5, weights(1.0), {"epoch": 0})
    ckpt.save(tmp_path, 5, weights(2.0), {"epoch": 1})
    assert len(ckpt.all_steps(tmp_path)) == 1
    assert load_checkpoint(tmp_path)["a.weight"][0, 0] == 2.0


def test_rng_state_round_trips_through_weights_only_load(tmp_path):
    torch.manual_seed(3)
    state = rng_state()
    ckpt.atomic_write(tmp_path / "s.pt", lambda f: torch.save(state, f))
    expected = torch.rand(5)
    torch.rand(100)
    set_rng_state(torch.load(tmp_path / "s.pt", weights_only=True))
    assert torch.equal(torch.rand(5), expected)


def test_no_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(TrainError, match="no checkpoint in"):
        load_checkpoint(tmp_path)


def test_incomplete_directories_are_never_trusted(tmp_path):
    ckpt.save(tmp_path, 7, weights(1.0), {"epoch": 0})
    root = tmp_path / "checkpoints"
    (root / ".tmp-step-00000009-123").mkdir()  # a save that was killed before its rename
    (root / ".tmp-step-00000009-123" / "model.safetensors").write_bytes(b"half")
    (root / "step-00000008").mkdir()  # no files: not a checkpoint
    assert ckpt.latest(tmp_path).name == "step-00000007"


def test_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "w.safetensors"
    ckpt.write_weights(path, weights(1.0))

    def explode(f):
        f.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(TrainError, match="cannot write .*w.safetensors.*disk full") as e:
        ckpt.atomic_write(path, explode)
    assert e.value.code == "E759"
    assert torch.equal(ckpt.read_weights(path)["a.weight"], weights(1.0)["a.weight"])
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


WRITER = textwrap.dedent("""
    import sys, torch
    from archdsl.training import checkpoint as ckpt
    out, i = sys.argv[1], 0
    big = {"w": torch.randn(2_000_000)}
    print("ready", flush=True)
    while True:
        i += 1
        big["w"][0] = i
        ckpt.save(out, i, big, {"epoch": i})
""")


def test_sigkill_during_saves_never_leaves_a_half_written_checkpoint(tmp_path):
    """Kill a process that saves 8 MB checkpoints in a loop at several random moments:
    whatever is left, the latest complete checkpoint always loads and is self-consistent."""
    for delay in (0.3, 0.7):
        out = tmp_path / f"run{delay}"
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE)
        assert p.stdout.readline().strip() == b"ready"
        deadline = time.time() + 60
        while not ckpt.all_steps(out) and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        last = ckpt.latest(out)
        model, state, _ = ckpt.load(last)
        step = int(last.name.split("-")[1])
        assert model["w"][0].item() == step == state["epoch"]
