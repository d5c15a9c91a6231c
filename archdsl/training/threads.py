"""CPU threads on a machine other processes share.

torch runs its CPU kernels on an OpenMP pool (GNU libgomp in the pip wheels) with one thread
per core. Each op ends at a barrier that waits for the slowest thread. When other processes
hold some of the cores, one of torch's threads is often descheduled; the others wait for it at
every barrier, and libgomp's waiting threads spin first, burning the time slices the late
thread (and the other processes) needed. Measured on 2 cores with a load average of 9-12,
`archdsl train convnext_atto --data digits --epochs 1`: 7.9 img/s with torch's default (2
threads, 54 s of CPU for 12 s of work), 53 img/s with OMP_WAIT_POLICY=PASSIVE, 115 img/s
with one thread (docs/shell.md, "Threads on a shared machine").

So, unless OMP_NUM_THREADS says otherwise, a run uses only the cores the load average leaves
free (at least one), and the CLI asks libgomp to sleep instead of spin while waiting
(OMP_WAIT_POLICY=PASSIVE, read when torch is imported, so the CLI sets it before). Both are
said in one line when they apply. Imports no torch at module level.

May import nothing of archdsl (it is a leaf of `training`)."""
from __future__ import annotations

import os
import sys


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


def free_threads(total: int, load: float) -> int:
    """The cores the load leaves free, at least one."""
    return max(1, min(total, int(total - load + 0.5)))


def before_torch() -> None:
    """For the CLI, before torch is imported: on a shared machine, libgomp's waiting threads
    sleep instead of spinning (unless OMP_WAIT_POLICY is set)."""
    if "torch" not in sys.modules and "OMP_WAIT_POLICY" not in os.environ and shared():
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def share_cores() -> str | None:
    """Lower torch's CPU threads to the cores the load average leaves free, unless
    OMP_NUM_THREADS was set; return the note to print when it did, else None."""
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    import torch

    total, load, current = cores(), load_average(), torch.get_num_threads()
    if load is None or not shared(total, load):
        return None
    n = min(current, free_threads(total, load))
    if n >= current:
        return None
    torch.set_num_threads(n)
    return (f"{n} CPU thread{'s' if n > 1 else ''} of {current}: the load average {load:.1f} on {total} cores "
            f"says other processes compete for them (set OMP_NUM_THREADS to choose)")
