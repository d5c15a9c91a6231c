"""Keep freed memory in the process instead of handing it back to the OS (glibc malloc).

glibc serves large blocks (above a threshold of at most 32 MB) with a fresh `mmap` and
unmaps them when they are freed; smaller blocks freed at the top of the heap are trimmed
back to the OS. A conv net's activations are exactly such blocks, allocated and freed every
step, so every step faults the same pages in again and the kernel zeroes them: on the
development machine a ConvNeXt-T forward (batch 8, 224x224) took 84,582 minor page faults
and 279 ms, and 0 faults and 212 ms with freed memory kept (`benchmarks/bench.py` prints
the faults per call). This is what a caching allocator (PyTorch's on CUDA, jemalloc or
tcmalloc on CPU) does: the process keeps its peak memory for its life, which a training run
reaches in its first step anyway.

Process-wide, so archdsl's library calls never do it on their own: `archdsl train` and
`archdsl train-roadmap` call `keep_freed_memory()` before they build anything; an API user
may call it too. On a libc without `mallopt` (musl, macOS, Windows) it changes nothing.
"""
from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1     # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4
NEVER_TRIM = 2 ** 31 - 1  # mallopt takes a C int


def keep_freed_memory() -> bool:
    """Serve every block from the heap and never trim it; True where glibc took both settings."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))
