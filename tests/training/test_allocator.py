"""`keep_freed_memory`: a large block freed and allocated again comes back without page
faults, where glibc's default unmaps it and faults it in again. Run in subprocesses, since
the setting is process-wide."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")

SCRIPT = """
import resource, sys, torch
from archdsl.training.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
torch.ones(16 * 2**20)          # 64 MB, freed at once
counts = []
for _ in range(5):              # the same size again; the fewest faults of five, since this VM's
    before = faults()           # memory reclaim (DAMON) may take back an idle page now and then
    torch.ones(16 * 2**20)
    counts.append(faults() - before)
print(min(counts))
"""


def faults_of_second_allocation(mode: str) -> int:
    run = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return int(run.stdout.split()[-1])


def test_freed_memory_is_reused_without_page_faults():
    assert faults_of_second_allocation("system") > 10_000   # 64 MB of 4 KiB pages: 16,384
    assert faults_of_second_allocation("keep") < 1_000
