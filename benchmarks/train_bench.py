"""End-to-end training benchmark: `archdsl.train` on an ImageFolder against a plain PyTorch loop.

    python benchmarks/make_folder.py /tmp/f2500 -n 2500
    python benchmarks/make_folder.py /tmp/f20k --from /tmp/f2500 --hardlink-to-n 20000
    python benchmarks/train_bench.py /tmp/f2500 /tmp/f20k --size 128 --batch 64 --steps 8

For every folder and pipeline, one fresh subprocess trains `convnext_atto` (10 classes, input
3xSxS) and reports:
- first step: seconds from the call (data listing, model build, DataLoader start included) to
  the end of the first optimizer step;
- images/s: training images per second over the next --steps optimizer steps (decode, per-image
  transforms in the workers, batch stage, forward, backward, optimizer: end to end);
- data wait: the share of those seconds the loop spent blocked on the loader;
- peak memory: the largest PSS sum over the process and its DataLoader workers (sampled every
  50 ms; pages shared with the workers count once) and the main process's peak RSS.
Pipelines:
- archdsl: `archdsl.train` with the spec's recipe as a folder run gets it (RandomResizedCrop,
  flip, RandAugment rand-m9-mstd0.5-inc1, erasing 0.25 pixel, Mixup 0.8 / CutMix 1.0, label
  smoothing, EMA, AdamW), --workers DataLoader workers.
- archdsl-plain: the same with RandAugment, erasing and Mixup/CutMix off: the baseline's work.
- baseline: the plain loop a competent engineer writes: data_bench's baseline dataset (PIL
  decode, RandomResizedCrop on the original, bicubic, flip) in --workers workers, the same
  archdsl-built model, AdamW, cross-entropy, normalization on the batch.
The machine's load (/proc/loadavg) is printed beside each row: the cores may be shared.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from data_bench import PeakMemory, baseline_dataset  # noqa: E402  (one baseline for both benches)


def _archdsl(folder: str, size: int, batch: int, steps: int, workers: int, plain: bool) -> dict:
    import archdsl
    from archdsl.training import report

    marks: list[float] = []
    waits: list[float] = []
    real = report.Reporter.step

    def step(self, *a, wait_s=0.0, step=None, **k):
        marks.append(time.perf_counter())
        waits.append(wait_s)
        if len(marks) == steps + 1:
            raise _Done
        return real(self, *a, wait_s=wait_s, step=step, **k)

    report.Reporter.step = step
    extra = {"train.randaugment": "none", "train.erasing": 0, "train.mixup": 0, "train.cutmix": 0} if plain else {}
    t0 = time.perf_counter()
    try:
        archdsl.train("convnext_atto", data=folder, epochs=1, out=tempfile.mkdtemp(), quiet=True,
                      input=f"3x{size}x{size}", check_memory=False,
                      **{"train.batch": batch, "train.workers": workers, **extra})
    except _Done:
        pass
    return {"first_step_s": marks[0] - t0, "images_per_s": steps * batch / (marks[-1] - marks[0]),
            "data_wait": sum(waits[1:]) / (marks[-1] - marks[0])}


class _Done(Exception):
    pass


def _baseline(folder: str, size: int, batch: int, steps: int, workers: int) -> dict:
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, RandomSampler

    from archdsl.api import build

    t0 = time.perf_counter()
    ds = baseline_dataset(os.path.join(folder, "train"), size)
    g = torch.Generator()
    g.manual_seed(0)
    dl = DataLoader(ds, batch_size=batch, sampler=RandomSampler(ds, generator=g), num_workers=workers,
                    persistent_workers=workers > 0, drop_last=True)
    model = build("convnext_atto", classes=10, input=(3, size, size), check_memory=False)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    mean = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
    std = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)
    marks, waits = [], []
    it = iter(dl)
    for _ in range(steps + 1):
        w0 = time.perf_counter()
        x, y = next(it)
        waits.append(time.perf_counter() - w0)
        x = (x.float() / 255 - mean) / std
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        marks.append(time.perf_counter())
    return {"first_step_s": marks[0] - t0, "images_per_s": steps * batch / (marks[-1] - marks[0]),
            "data_wait": sum(waits[1:]) / (marks[-1] - marks[0])}


def child(args) -> None:
    mem = PeakMemory()
    mem.start()
    if args.kind == "baseline":
        r = _baseline(args.folder, args.size, args.batch, args.steps, args.workers)
    else:
        r = _archdsl(args.folder, args.size, args.batch, args.steps, args.workers, args.kind == "archdsl-plain")
    mem.stop.set()
    mem.join()
    r |= {"peak_pss_mb": mem.peak / 2 ** 20,
          "main_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print(json.dumps(r))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="*")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pipelines", default="baseline,archdsl-plain,archdsl")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--kind", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    print(f"convnext_atto at {args.size}x{args.size}, batch {args.batch}, {args.workers} workers, "
          f"{args.steps} steps after the first")
    print(f"{'folder':<22} {'pipeline':<14} {'images':>7} {'first step':>11} {'img/s':>7} {'data wait':>10} "
          f"{'peak PSS':>9} {'main RSS':>9}  load")
    for folder in args.folders:
        n = sum(len(files) for _, _, files in os.walk(os.path.join(folder, "train")))
        for kind in args.pipelines.split(","):
            cmd = [sys.executable, __file__, "--child", "--kind", kind, "--folder", folder,
                   "--size", str(args.size), "--batch", str(args.batch), "--steps", str(args.steps),
                   "--workers", str(args.workers)]
            env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
            p = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if p.returncode:
                print(f"{folder:<22} {kind:<14} failed: {p.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(p.stdout.strip().splitlines()[-1])
            load = open("/proc/loadavg").read().split()[0]
            print(f"{os.path.basename(folder):<22} {kind:<14} {n:>7} {r['first_step_s']:>10.1f}s "
                  f"{r['images_per_s']:>7.1f} {100 * r['data_wait']:>9.0f}% {r['peak_pss_mb']:>8.0f}M "
                  f"{r['main_maxrss_mb']:>8.0f}M  {load}", flush=True)


if __name__ == "__main__":
    main()
