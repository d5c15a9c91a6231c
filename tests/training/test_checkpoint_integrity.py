"""Checkpoints are verified before they are trusted: every way of damaging one (truncate,
flip a byte, delete a file, swap files between checkpoints) is found, a resume falls back to
the newest checkpoint that verifies, best.safetensors and metrics.jsonl follow the checkpoint
after a SIGKILL at the end of the last epoch, orphans are removed, and a resume refuses a
network other than the one the checkpoint was trained with (unless --force)."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from archdsl.lang.errors import TrainError
from archdsl.training import checkpoint as ckpt
from archdsl.training import load_checkpoint, train

TINY = {"widths": "8,16,32,64", "depths": "1,1,1,1"}
ROOT = Path(__file__).resolve().parents[2]


def weights(v: float) -> dict:
    return {"a.weight": torch.full((4, 4), v), "b.bias": torch.arange(3.0) + v}


def three_checkpoints(out: Path) -> list[Path]:
    ckpt.KEEP, keep = 3, ckpt.KEEP
    try:
        for step in (1, 2, 3):
            ckpt.save(out, step, weights(float(step)), {"epoch": step}, ema_sd=weights(-step),
                      best_sd=weights(10.0 + step) if step != 3 else None)
    finally:
        ckpt.KEEP = keep
    return ckpt.step_dirs(out)


def truncate(p: Path):
    p.write_bytes(p.read_bytes()[:-7])


def flip(p: Path):
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))


DAMAGE = {
    "truncate model": lambda d: truncate(d / ckpt.MODEL),
    "flip a byte of model": lambda d: flip(d / ckpt.MODEL),
    "flip a byte of ema": lambda d: flip(d / ckpt.EMA),
    "flip a byte of state": lambda d: flip(d / ckpt.STATE),
    "truncate state": lambda d: truncate(d / ckpt.STATE),
    "delete ema": lambda d: (d / ckpt.EMA).unlink(),
    "delete model": lambda d: (d / ckpt.MODEL).unlink(),
    "delete best": lambda d: (d / ckpt.BEST).unlink(),
    "delete manifest": lambda d: (d / ckpt.MANIFEST).unlink(),
    "garble manifest": lambda d: (d / ckpt.MANIFEST).write_text("{not json"),
    "swap model from the previous checkpoint":
        lambda d: shutil.copyfile(d.parent / "step-00000002" / ckpt.MODEL, d / ckpt.MODEL),
    "swap state from the previous checkpoint":
        lambda d: shutil.copyfile(d.parent / "step-00000002" / ckpt.STATE, d / ckpt.STATE),
    "swap the whole manifest from the previous checkpoint":
        lambda d: shutil.copyfile(d.parent / "step-00000002" / ckpt.MANIFEST, d / ckpt.MANIFEST),
}


@pytest.mark.parametrize("how", DAMAGE)
def test_every_damage_is_found_and_the_previous_checkpoint_is_used(tmp_path, how):
    dirs = three_checkpoints(tmp_path)
    assert all(ckpt.verify(d) is None for d in dirs)
    assert os.path.samefile(dirs[2] / ckpt.BEST, dirs[1] / ckpt.BEST)  # carried over as a link
    DAMAGE[how](dirs[2])
    assert ckpt.verify(dirs[2]) is not None
    problems: list[str] = []
    assert ckpt.newest_verified(tmp_path, quiet=True, problems=problems) == dirs[1]
    assert len(problems) == 1 and "step-00000003" in problems[0]
    with pytest.warns(UserWarning, match="not usable"):
        assert torch.equal(load_checkpoint(tmp_path)["a.weight"], weights(2.0)["a.weight"])
    with pytest.raises(TrainError, match="not usable") as e:
        ckpt.load(dirs[2])
    assert e.value.code == "E752"


def test_no_verified_checkpoint_is_an_error_listing_each(tmp_path):
    dirs = three_checkpoints(tmp_path)
    for d in dirs:
        flip(d / ckpt.MODEL)
    with pytest.raises(TrainError, match="no checkpoint in .* verifies") as e, pytest.warns(UserWarning):
        load_checkpoint(tmp_path)
    assert all(d.name in e.value.message for d in dirs)


def test_orphans_of_killed_saves_and_prunes_are_removed(tmp_path):
    three_checkpoints(tmp_path)
    root = tmp_path / "checkpoints"
    (root / ".tmp-step-00000009-999999").mkdir()
    (root / ".old-step-00000001-999999").mkdir()
    (root / ".old-step-00000001-999999" / ckpt.MODEL).write_bytes(b"x")
    (tmp_path / ".metrics.jsonl.tmp-999999").write_text("partial")
    removed = ckpt.clean(tmp_path)
    assert len(removed) == 3
    assert sorted(p.name for p in root.iterdir()) == ["step-00000001", "step-00000002", "step-00000003"]


def test_a_failed_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    ckpt.save(tmp_path, 1, weights(1.0), {"epoch": 1})
    real = ckpt._write_bytes

    def full_disk(path, data):
        if path.name == ckpt.STATE:
            raise OSError(28, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(ckpt, "_write_bytes", full_disk)
    with pytest.raises(TrainError, match="No space left on device") as e:
        ckpt.save(tmp_path, 2, weights(2.0), {"epoch": 2})
    assert e.value.code == "E759" and "ENOSPC" in e.value.message and "free some space" in e.value.hint
    assert [d.name for d in ckpt.step_dirs(tmp_path)] == ["step-00000001"]
    assert ckpt.verify(ckpt.latest(tmp_path)) is None
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]


# ---------------------------------------------------------------- whole runs


def run(out, epochs=2, **kw):
    return train("convnext_atto", "digits", epochs=epochs, out=out, quiet=True, train_lr=4e-3,
                 train_checkpoint_every=5, **{**TINY, **kw})


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A 2-epoch run (checkpoints every 5 steps, two kept) and its final weights."""
    out = tmp_path_factory.mktemp("finished")
    r = run(out)
    return out, {k: v.clone() for k, v in r.model.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("how", ["flip a byte of model", "delete ema", "truncate state"])
def test_resume_falls_back_past_a_damaged_newest_checkpoint(finished, tmp_path, how, capsys):
    """The run's newest checkpoint is damaged: --resume warns, goes back to the previous one
    (mid-epoch 2), trains the rest again and ends with the same weights as the clean run."""
    src, final = finished
    out = tmp_path / "run"
    shutil.copytree(src, out, symlinks=False)
    newest = ckpt.step_dirs(out)[-1]
    DAMAGE[how](newest)
    r = train("convnext_atto", "digits", epochs=2, out=out, resume=True, train_lr=4e-3,
              train_checkpoint_every=5, **TINY)
    err = capsys.readouterr().err
    assert f"warning: checkpoint {newest}" in err and "falling back" in err
    assert f"set aside {newest}" in err
    assert same(r.model.state_dict(), final)
    assert ckpt.verify(ckpt.step_dirs(out)[-1]) is None


def test_resume_refuses_another_network_of_the_same_shapes(finished, tmp_path):
    src, _ = finished
    out = tmp_path / "run"
    shutil.copytree(src, out)
    for d in ckpt.step_dirs(out)[-1:]:  # resume from the mid-run checkpoint, not the finished one
        shutil.rmtree(d)
    text = (ROOT / "specs" / "convnext_t.arch").read_text()
    start, end = text.index("block convnext"), text.index("stem")
    relu = tmp_path / "relu_atto.arch"
    relu.write_text("network relu_atto extends convnext_atto\n"
                    + text[start:end].replace("gelu", "relu"))
    args = dict(epochs=2, out=out, resume=True, quiet=True, train_lr=4e-3, train_checkpoint_every=5, **TINY)
    with pytest.raises(TrainError, match=r"not the one it was trained with .*gelu.* -> .*relu") as e:
        train(str(relu), "digits", **args)
    assert "--force" in e.value.hint
    with pytest.raises(TrainError, match=r"input"):
        train("convnext_atto", "digits", input="1x64x64", **args)
    # harmless knobs (channels-last, checkpoint_every) do not block a resume
    r = train("convnext_atto", "digits", train_channels_last=True, **{**args, "train_checkpoint_every": 3})
    assert r.history[-1]["epoch"] == 2


def test_force_resumes_another_network_whose_weights_fit(finished, tmp_path, capsys):
    src, _ = finished
    out = tmp_path / "run"
    shutil.copytree(src, out)
    shutil.rmtree(ckpt.step_dirs(out)[-1])
    text = (ROOT / "specs" / "convnext_t.arch").read_text()
    start, end = text.index("block convnext"), text.index("stem")
    relu = tmp_path / "relu_atto.arch"
    relu.write_text("network relu_atto extends convnext_atto\n" + text[start:end].replace("gelu", "relu"))
    r = train(str(relu), "digits", epochs=2, out=out, resume=True, force=True, train_lr=4e-3,
              train_checkpoint_every=5, **TINY)
    assert "because of --force" in capsys.readouterr().err
    assert r.history[-1]["epoch"] == 2


KILL_AT_PUBLISH = textwrap.dedent("""
    import os, signal, sys
    from archdsl.training import checkpoint as ckpt, train
    real, calls = ckpt.publish_best, []
    def publish_then_die(out, path):
        calls.append(path)
        state_epoch = __import__("json").loads((path / ckpt.MANIFEST).read_text())["epoch"]
        if state_epoch == 2:  # the final checkpoint is committed; die before best and metrics
            os.kill(os.getpid(), signal.SIGKILL)
        return real(out, path)
    ckpt.publish_best = publish_then_die
    train("convnext_atto", "digits", epochs=2, out=sys.argv[1], quiet=True, train_lr=4e-3,
          widths="8,16,32,64", depths="1,1,1,1")
""")


def test_sigkill_after_the_last_checkpoint_leaves_best_and_metrics_that_resume_repairs(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", KILL_AT_PUBLISH, str(out)], env=env, timeout=300)
    assert p.returncode == -9
    final = ckpt.latest(out)
    manifest = json.loads((final / ckpt.MANIFEST).read_text())
    assert manifest["epoch"] == 2
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 1  # killed before the metrics of epoch 2
    r = train("convnext_atto", "digits", epochs=2, out=out, resume=True, quiet=True, train_lr=4e-3, **TINY)
    _, state, _ = ckpt.load(final)
    assert [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()] == state["history"]
    assert r.best_epoch == manifest["best_epoch"]
    best = ckpt.read_weights(out / ckpt.BEST)
    assert ckpt.sha256_file(out / ckpt.BEST) == manifest["files"][ckpt.BEST]["sha256"]
    if manifest["best_epoch"] == 2:  # then the best weights are the final ones
        assert same(best, ckpt.read_weights(final / ckpt.MODEL))
