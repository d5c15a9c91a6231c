"""Loader-only benchmark (no model): archdsl's streaming pipeline against a plain PyTorch one.

    python benchmarks/make_folder.py /tmp/f2500 -n 2500
    python benchmarks/make_folder.py /tmp/f20k --from /tmp/f2500 --hardlink-to-n 20000
    python benchmarks/data_bench.py /tmp/f2500 /tmp/f20k --sizes 128,224 --batches 20

For every folder, input size and pipeline, one fresh subprocess measures:
- first batch: seconds from the start of data setup (listing included; after the imports a
  training program has done anyway: torch, and archdsl for its pipeline) to the first batch;
- images/s: train images per second over the next --batches batches (after the first);
- CPU ms/image: user + system CPU time of the main process and its workers over those batches,
  per image: the figure that a shared, loaded machine disturbs least (wall-clock images/s on
  2 cores shared with other jobs moves by tens of percent from run to run);
- peak memory: the largest sum of PSS (proportional set size, so pages the workers share with
  the main process count once) over the main process and its DataLoader workers, sampled every
  50 ms, and the main process's own peak RSS.
Pipelines (batch --batch, --workers DataLoader workers, uint8 (B, 3, S, S) batches):
- archdsl: data.listing + FolderDataset + T's train_transform (RandomResizedCrop on the original,
  bicubic, flip) + EpochSampler + collate; `draft` decodes JPEGs at a reduced scale where the
  crop allows; `ra` adds RandAugment rand-m9-mstd0.5-inc1.
- baseline: what a competent engineer writes without torchvision: os.walk listing (sorted, as
  ImageFolder), PIL open + convert("RGB"), RandomResizedCrop on the original image written here
  from torchvision's get_params (10 tries, then the centre crop), bicubic resize, flip, default
  collate, a shuffled RandomSampler.
- shards: archdsl's ShardDataset over FOLDER-shards (`archdsl data pack FOLDER --to FOLDER-shards`)
  with the same transform, sampler and collate as `archdsl`.
The machine's load (/proc/loadavg) is printed beside each row: the cores may be shared.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def family(pid: int) -> list[int]:
    """`pid` and its live children (the DataLoader workers)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [pid] + [int(p) for p in f.read().split()]
    except OSError:
        return [pid]


def pss_total(pid: int) -> int:
    """PSS in bytes of `pid` and its children."""
    total = 0
    for p in family(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                total += next(int(line.split()[1]) * 1024 for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration):
            pass
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and its children."""
    total = 0
    for p in family(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


class PeakMemory(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.stop = 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, pss_total(os.getpid()))
            time.sleep(0.05)


# ------------------------------------------------------------------ the plain PyTorch baseline

EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def baseline_dataset(root: str, size: int):
    import numpy as np
    import torch
    from PIL import Image
    from torch.utils.data import Dataset

    classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
    samples = []
    for i, c in enumerate(classes):
        for dirpath, _, files in sorted(os.walk(os.path.join(root, c), followlinks=True)):
            samples += [(os.path.join(dirpath, f), i) for f in sorted(files)
                        if f.lower().endswith(EXTENSIONS)]

    def rrc_params(w, h, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
        area = w * h
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            target = area * random.uniform(*scale)
            ar = math.exp(random.uniform(*log_ratio))
            cw, ch = int(round(math.sqrt(target * ar))), int(round(math.sqrt(target / ar)))
            if 0 < cw <= w and 0 < ch <= h:
                return random.randint(0, w - cw), random.randint(0, h - ch), cw, ch
        in_ratio = w / h
        if in_ratio < ratio[0]:
            cw, ch = w, int(round(w / ratio[0]))
        elif in_ratio > ratio[1]:
            ch, cw = h, int(round(h * ratio[1]))
        else:
            cw, ch = w, h
        return (w - cw) // 2, (h - ch) // 2, cw, ch

    class Folder(Dataset):
        def __len__(self):
            return len(samples)

        def __getitem__(self, i):
            path, label = samples[i]
            with open(path, "rb") as f:
                img = Image.open(f).convert("RGB")
            x, y, cw, ch = rrc_params(*img.size)
            img = img.resize((size, size), Image.Resampling.BICUBIC, box=(x, y, x + cw, y + ch))
            if random.random() < 0.5:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            return torch.from_numpy(np.asarray(img, np.uint8).copy()).permute(2, 0, 1), label

    return Folder()


def loader(kind: str, folder: str, size: int, batch: int, workers: int, draft: bool, ra: bool):
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    common = dict(batch_size=batch, num_workers=workers, persistent_workers=workers > 0,
                  drop_last=True)
    if kind == "baseline":
        ds = baseline_dataset(os.path.join(folder, "train"), size)
        g = torch.Generator()
        g.manual_seed(0)
        return DataLoader(ds, sampler=RandomSampler(ds, generator=g), **common), len(ds)
    from archdsl.data.collate import collate
    from archdsl.data.datasets import FolderDataset
    from archdsl.data.listing import list_folder
    from archdsl.data.sampler import EpochSampler
    from archdsl.data.shards import ShardDataset, find_shards, open_split
    from archdsl.data.transforms import train_transform

    t = train_transform((size, size), randaugment=(9, 0.5) if ra else None, draft=draft)
    if kind == "shards":
        ds = ShardDataset(open_split(find_shards(folder.rstrip("/") + "-shards"), "train"), t,
                          channels=3, seed=0)
    else:
        f = list_folder(folder)
        ds = FolderDataset(f.train.files, f.train.labels, t, channels=3, seed=0)
    sampler = EpochSampler(len(ds), seed=0)
    return DataLoader(ds, sampler=sampler, collate_fn=collate, **common), len(ds)


def measure(kind, folder, size, batch, workers, draft, ra, batches) -> dict:
    # The program's imports come first and are not timed: a training run has torch (and, for
    # archdsl, its own package) loaded before it sets up data.
    import torch  # noqa: F401
    if kind != "baseline":
        import archdsl.data.datasets  # noqa: F401
        import archdsl.data.transforms  # noqa: F401
    mem = PeakMemory()
    mem.start()
    t0 = time.perf_counter()
    dl, n = loader(kind, folder, size, batch, workers, draft, ra)
    it = iter(dl)
    first = next(it)
    t1 = time.perf_counter()
    c1 = cpu_seconds(os.getpid())
    got = 0
    for _ in range(batches):
        b = next(it)
        got += len(b[1] if kind == "baseline" else b.y)
    t2 = time.perf_counter()
    c2 = cpu_seconds(os.getpid())
    mem.stop.set()
    mem.join()
    import resource

    x = first[0] if kind == "baseline" else first.x
    assert tuple(x.shape) == (batch, 3, size, size), x.shape
    return {"first_batch_s": t1 - t0, "images_per_s": got / (t2 - t1), "images": n,
            "cpu_ms_per_image": (c2 - c1) * 1000 / got,
            "peak_pss_mb": mem.peak / 2 ** 20,
            "main_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child(args) -> None:
    r = measure(args.kind, args.folder, args.size, args.batch, args.workers, args.draft, args.ra,
                args.batches)
    print(json.dumps(r))


def run_child(args, folder: str, size: int, pipe: str) -> dict | None:
    kind = pipe.split("+")[0]
    cmd = [sys.executable, __file__, "--child", "--kind", kind, "--folder", folder,
           "--size", str(size), "--batch", str(args.batch), "--workers",
           str(args.workers), "--batches", str(args.batches)]
    cmd += ["--draft"] if "draft" in pipe else []
    cmd += ["--ra"] if "+ra" in pipe else []
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    load = open("/proc/loadavg").read().split()[0]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        print(done.stderr[-2000:], file=sys.stderr)
        return None
    r = json.loads(done.stdout.strip().splitlines()[-1])
    load += "/" + open("/proc/loadavg").read().split()[0]
    r.update(folder=folder, pipeline=pipe, size=size, load=load)
    return r


def row(r: dict) -> str:
    return (f"| {os.path.basename(r['folder'])} | {r['images']:,} | {r['pipeline']} | {r['size']} | "
            f"{r['first_batch_s']:.1f} | {r['images_per_s']:.0f} | {r['cpu_ms_per_image']:.1f} | "
            f"{r['peak_pss_mb']:.0f} | "
            f"{r['main_maxrss_mb']:.0f} | {r['load']} |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="*")
    ap.add_argument("--sizes", default="128,224")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batches", type=int, default=20, help="batches timed after the first")
    ap.add_argument("--pipelines", default="baseline,archdsl,archdsl+draft",
                    help="comma list of baseline, archdsl, archdsl+draft, archdsl+draft+ra, shards, "
                         "shards+draft (shards: FOLDER-shards, from `archdsl data pack FOLDER "
                         "--to FOLDER-shards`)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per configuration (medians shown)")
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--kind", choices=("baseline", "archdsl", "shards")), ap.add_argument("--folder"), ap.add_argument("--size", type=int)
    ap.add_argument("--draft", action="store_true"), ap.add_argument("--ra", action="store_true")
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    rows = []
    header = ("| folder | train images | pipeline | input | first batch s | images/s | CPU ms/image | "
              "peak PSS MB (main+workers) | main max RSS MB | load avg |\n"
              "|---|---:|---|---:|---:|---:|---:|---:|---:|---|")
    print(header)
    for rep in range(args.repeat):  # repeats interleaved: a burst of load hits every pipeline alike
        for folder in args.folders:
            for size in [int(s) for s in args.sizes.split(",")]:
                for pipe in args.pipelines.split(","):
                    r = run_child(args, folder, size, pipe)
                    if r:
                        rows.append(r)
                        print(row(r), flush=True)
    if args.repeat > 1:
        print(f"\nmedians of {args.repeat} runs (load avg: the range over the runs)\n" + header)
        keys = sorted({(r["folder"], r["size"], r["pipeline"]) for r in rows},
                      key=lambda k: (args.folders.index(k[0]), k[1], args.pipelines.split(",").index(k[2])))
        for k in keys:
            same = [r for r in rows if (r["folder"], r["size"], r["pipeline"]) == k]
            med = {m: statistics.median(r[m] for r in same) for m in
                   ("first_batch_s", "images_per_s", "cpu_ms_per_image", "peak_pss_mb",
                    "main_maxrss_mb")}
            loads = sorted(float(x) for r in same for x in r["load"].split("/"))
            med.update(folder=k[0], size=k[1], pipeline=k[2], images=same[0]["images"],
                       load=f"{loads[0]:.1f}-{loads[-1]:.1f}")
            print(row(med))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
