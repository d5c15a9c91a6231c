"""`archdsl train` throughput under torch's default threading and archdsl's, on this machine as
it is (other processes included), with an optional competing busy process of our own.

    python benchmarks/threads.py                 # 1 epoch of convnext_atto on digits per setting
    python benchmarks/threads.py --compete 2     # plus 2 busy-looping processes while it runs

Each setting is a fresh `python -m archdsl train` (the OpenMP settings are read at torch's
import). Prints img/s (from metrics.jsonl), wall and CPU seconds, and /proc/loadavg before and
after each run. Settings:
  torch default   OMP_NUM_THREADS=<cores>, OMP_WAIT_POLICY unset: what torch does by itself
  passive         OMP_NUM_THREADS=<cores>, OMP_WAIT_POLICY=PASSIVE
  one thread      OMP_NUM_THREADS=1
(archdsl itself keeps torch's default and prints a note naming the other two; training/threads.py.)
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def run(env_changes: dict[str, str | None], epochs: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    env.update({k: v for k, v in env_changes.items() if v is not None})
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory() as out:
        before, t0 = loadavg(), time.perf_counter()
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-m", "archdsl", "train", "convnext_atto", "--data", "digits", "--epochs",
                        str(epochs), "--out", out, "--quiet", "--device", "cpu"], env=env, check=True)
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    return {"img_per_s": rows[-1]["images_per_s"], "wall_s": time.perf_counter() - t0,
            "cpu_s": (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime),
            "loadavg_before": before, "loadavg_after": loadavg()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--compete", type=int, default=0, help="busy-looping processes to start alongside")
    ap.add_argument("--rounds", type=int, default=1, help="rounds of all settings, interleaved (the load drifts)")
    args = ap.parse_args()
    cores = str(len(os.sched_getaffinity(0)))
    settings = {"torch default": {"OMP_NUM_THREADS": cores}, "passive": {"OMP_NUM_THREADS": cores,
                "OMP_WAIT_POLICY": "PASSIVE"}, "one thread": {"OMP_NUM_THREADS": "1"}}
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.compete)]
    try:
        print(f"{cores} cores, {args.compete} competing processes of ours")
        results: dict[str, list[float]] = {name: [] for name in settings}
        names = list(settings)
        for k in range(args.rounds):
            for name in names[k % len(names):] + names[:k % len(names)]:  # each round starts elsewhere
                r = run(settings[name], args.epochs)
                results[name].append(r["img_per_s"])
                print(f"{name:14} {r['img_per_s']:7.1f} img/s  {r['wall_s']:6.1f} s wall  {r['cpu_s']:6.1f} s CPU  "
                      f"loadavg {r['loadavg_before']} -> {r['loadavg_after']}", flush=True)
        print("median img/s: " + ", ".join(f"{n} {statistics.median(v):.1f}" for n, v in results.items()))
    finally:
        for p in busy:
            p.kill()


if __name__ == "__main__":
    main()
