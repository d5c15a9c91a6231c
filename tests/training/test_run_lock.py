"""One run per --out: a second run, fresh or --resume, is refused while the first lives (an
error naming its pid and the lock), and the lock of a dead run is taken over."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archdsl.lang.errors import TrainError
from archdsl.training.lock import RunLock

ROOT = Path(__file__).resolve().parents[2]


def cli(out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "archdsl", "train", "convnext_atto", "--data", "digits", "--quiet",
            "--set", "widths=8,16,32,64", "--set", "depths=1,1,1,1", "--out", str(out), *args]


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def test_two_runs_race_on_one_out(tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen(cli(out, "--epochs", "30"), env=env(), stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        deadline = time.time() + 120
        while not (out / ".lock").exists() and time.time() < deadline:
            time.sleep(0.05)
        assert (out / ".lock").read_text().split()[0] == str(first.pid)
        for extra in ((), ("--resume",)):
            second = subprocess.run(cli(out, "--epochs", "30", *extra), env=env(), capture_output=True,
                                    text=True, timeout=120)
            assert second.returncode == 1, second.stderr
            assert f"in use by another run (pid {first.pid}; lock {out / '.lock'})" in second.stderr
            assert "error[E758]" in second.stderr and "Traceback" not in second.stderr
        assert first.poll() is None  # the first run goes on
        # Once the first dies by SIGKILL its lock file stays, with a dead pid: it is taken over.
        while not list((out / "checkpoints").glob("step-*")) and time.time() < deadline:
            time.sleep(0.1)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert (out / ".lock").exists()
    # a resume with other settings now gets past the lock to the settings check
    resumed = subprocess.run(cli(out, "--epochs", "1", "--resume"), env=env(), capture_output=True,
                             text=True, timeout=120)
    assert resumed.returncode == 1 and "error[E756]" in resumed.stderr and "E758" not in resumed.stderr
    with RunLock(out):  # the dead run's lock is free
        assert (out / ".lock").read_text().split()[0] == str(os.getpid())
        with pytest.raises(TrainError, match=f"pid {os.getpid()}") as e:
            RunLock(out).acquire()
        assert e.value.code == "E758"
    assert not (out / ".lock").exists()  # released


def test_a_stale_lock_file_with_a_dead_pid_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / ".lock").write_text(f"{dead} somehost\n")
    with RunLock(tmp_path):
        assert (tmp_path / ".lock").read_text().split()[0] == str(os.getpid())
