"""The thread count a run picks on a shared machine (training/threads.py). Its speed is measured
in benchmarks/threads.py, not here."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from archdsl.training import threads

REPO = Path(__file__).resolve().parents[2]


def test_free_threads_and_shared():
    assert threads.free_threads(2, 9.3) == 1       # the machine: 2 cores, 9 busy processes
    assert threads.free_threads(16, 3.2) == 13
    assert threads.free_threads(8, 0.1) == 8
    assert threads.shared(2, 9.3) and threads.shared(16, 15.5) and threads.shared(1, 1.2)
    assert not threads.shared(16, 3.0) and not threads.shared(2, 0.9) and not threads.shared(1, 0.3)


def test_share_cores_lowers_torch_threads_only_when_asked_by_the_load(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "cores", lambda: 2)
    try:
        torch.set_num_threads(2)
        monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user chose: left alone
        monkeypatch.setattr(threads, "load_average", lambda: 9.0)
        assert threads.share_cores() is None and torch.get_num_threads() == 2
        monkeypatch.delenv("OMP_NUM_THREADS")
        monkeypatch.setattr(threads, "load_average", lambda: 0.4)  # an idle machine: left alone
        assert threads.share_cores() is None and torch.get_num_threads() == 2
        monkeypatch.setattr(threads, "load_average", lambda: 9.0)
        note = threads.share_cores()
        assert torch.get_num_threads() == 1
        assert note.startswith("1 CPU thread of 2: the load average 9.0 on 2 cores") and "OMP_NUM_THREADS" in note
    finally:
        torch.set_num_threads(before)


def test_cli_asks_openmp_to_sleep_before_torch_loads():
    code = ("import os, sys\nimport archdsl.training.threads as t\nt.cores = lambda: 2\nt.load_average = lambda: 9.0\n"
            "t.before_torch()\nassert 'torch' not in sys.modules\nprint(os.environ.get('OMP_WAIT_POLICY'))")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env, timeout=60)
    assert p.stdout.strip() == "PASSIVE", p.stderr
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # set by the user: kept
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env, timeout=60)
    assert p.stdout.strip() == "ACTIVE", p.stderr
