"""On a shared machine, training says what to set (training/threads.py). Its speed is measured
in benchmarks/threads.py, not here."""
from __future__ import annotations

from archdsl.training import threads


def test_shared():
    assert threads.shared(2, 9.3) and threads.shared(16, 15.5) and threads.shared(1, 1.2)
    assert not threads.shared(16, 3.0) and not threads.shared(2, 0.9) and not threads.shared(1, 0.3)


def test_note_only_when_shared_and_unset(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(threads, "cores", lambda: 2)
    monkeypatch.setattr(threads, "load_average", lambda: 9.3)
    note = threads.shared_machine_note()
    assert note.startswith("the load average 9.3 on 2 cores says other processes compete for them")
    assert "OMP_NUM_THREADS=1" in note and "OMP_WAIT_POLICY=PASSIVE" in note
    monkeypatch.setattr(threads, "load_average", lambda: 0.4)  # idle: nothing to say
    assert threads.shared_machine_note() is None
    monkeypatch.setattr(threads, "load_average", lambda: 9.3)
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # the user chose
    assert threads.shared_machine_note() is None
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.shared_machine_note() is None
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(threads, "cores", lambda: 1)  # one core: torch runs one thread anyway
    assert threads.shared_machine_note() is None
