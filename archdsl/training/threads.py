"""CPU threads on a machine other processes share: detect it and say what to set.

torch runs its CPU kernels on an OpenMP pool (GNU libgomp in the pip wheels), one thread per
core, and every op ends at a barrier that waits for the slowest thread. When other processes
hold the cores, one of torch's threads is often descheduled while the others wait for it, and
libgomp's waiting threads spin before they sleep. How much that costs depends on what the
other processes do, so no fixed setting wins everywhere. Measured on 2 cores shared with 9
other busy processes, `archdsl train convnext_atto --data digits --epochs 1`
(benchmarks/threads.py; docs/shell.md has the runs):

  - once (load 9.3): torch's default 7.9 img/s, burning 54 s of CPU for 12 s of work
    (spinning); OMP_WAIT_POLICY=PASSIVE 53 img/s; OMP_NUM_THREADS=1 115 img/s;
  - in three interleaved rounds later (load 10-16, the others single-threaded): torch's
    default 108-226 img/s, PASSIVE 64-185, one thread 27-60: two threads get two shares of
    the scheduler's time, and nothing spun (13 s of CPU each).

So archdsl keeps torch's default and, when the load average says the cores are shared and
neither OMP_NUM_THREADS nor OMP_WAIT_POLICY is set, prints one line naming both settings.
Imports no torch.

May import nothing of archdsl (a leaf of `training`)."""
from __future__ import annotations

import os


def cores() -> int:
    """The CPUs this process may run on (its affinity, as a container or taskset limits it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def load_average() -> float | None:
    """The 1-minute load average: processes running or waiting for a CPU, averaged."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def shared(total: int | None = None, load: float | None = None) -> bool:
    """Whether other processes compete for the cores: the load fills more than all of them
    but one."""
    total = cores() if total is None else total
    load = load_average() if load is None else load
    return load is not None and load > max(total - 1, 0.5)


def shared_machine_note() -> str | None:
    """The line to print when the cores are shared and the user has not chosen how torch's
    threads behave; None otherwise."""
    if os.environ.get("OMP_NUM_THREADS") or os.environ.get("OMP_WAIT_POLICY"):
        return None
    total, load = cores(), load_average()
    if load is None or total < 2 or not shared(total, load):
        return None
    return (f"the load average {load:.1f} on {total} cores says other processes compete for them; if img/s is "
            f"low, torch's threads may be waiting on each other: try OMP_NUM_THREADS=1 or "
            f"OMP_WAIT_POLICY=PASSIVE (docs/shell.md, \"Threads on a shared machine\")")
