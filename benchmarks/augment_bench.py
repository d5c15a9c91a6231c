"""Per-image PIL RandAugment in DataLoader workers against kornia's batch RandAugment, on CPU,
and reduced-scale JPEG decoding (`draft=True`) against full decoding.

    python benchmarks/augment_bench.py                     # both tables (~1-2 min on 2 busy cores)
    python benchmarks/augment_bench.py --part loader --batches 8
    python benchmarks/augment_bench.py --part draft --images 40

Loader table (224 px, batch 64, 2 workers, torch threads 1 everywhere): images are in-memory
JPEGs (synthetic photos: gradients, shapes and noise, quality 90) decoded in the workers.
  pil-ra     workers: RandomResizedCrop + flip + RandAugment rand-m9-mstd0.5-inc1 (archdsl.data)
  pil-noaug  workers: RandomResizedCrop + flip only (the cost RandAugment adds is the difference)
  kornia-ra  workers: RandomResizedCrop + flip; main process: x / 255 and kornia's
             RandAugment(n=2, m=9 on its 0..30 scale x 3) on the float batch
  kornia-only  kornia's RandAugment alone on a ready (64, 3, 224, 224) batch
images/s is over all timed batches after one warm-up batch. The machine is shared: the run
queue from /proc/loadavg (running/total tasks and the 1-minute load) is printed before and after.

Draft table: per image, RandomResizedCrop at 224 (and the 224 evaluation crop) decoded fully vs
with draft=True, same random box; ms/image and the pixel difference (mean / max |a - b|).
"""
from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import time

import numpy as np
import torch
from PIL import Image, ImageDraw

from archdsl.data.crop import RandomResizedCrop, hflip
from archdsl.data.transforms import eval_transform, train_transform


def photos(n: int, size=(500, 375), seed=0) -> list[bytes]:
    r = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        w, h = size
        y, x = np.mgrid[0:h, 0:w]
        a = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], -1).astype(np.float32)
        a = np.clip(a + r.normal(0, 12, a.shape), 0, 255).astype(np.uint8)
        img = Image.fromarray(a)
        d = ImageDraw.Draw(img)
        for _ in range(12):
            x0, y0 = int(r.integers(0, w - 20)), int(r.integers(0, h - 20))
            d.ellipse([x0, y0, x0 + int(r.integers(10, w // 3)), y0 + int(r.integers(10, h // 3))],
                      fill=tuple(int(v) for v in r.integers(0, 256, 3)))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def rgb(img):
    return img.convert("RGB")


class Images(torch.utils.data.Dataset):
    def __init__(self, data, transform, n):
        self.data, self.transform, self.n = data, transform, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        img = Image.open(io.BytesIO(self.data[i % len(self.data)]))
        return self.transform(img, random.Random(i), rgb)


class CropFlip:
    def __init__(self, size):
        self.crop = RandomResizedCrop(size)

    def __call__(self, img, rng, convert):
        img = hflip(self.crop(img, rng, convert), rng)
        return torch.from_numpy(np.asarray(img).transpose(2, 0, 1).copy())


def init_worker(_):
    torch.set_num_threads(1)


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        load1, _, _, queue, _ = f.read().split()
    return f"run queue {queue} (running/total), load1 {load1}"


def loader_rate(data, transform, batches, batch, workers, on_batch=None) -> float:
    ds = Images(data, transform, batch * (batches + 1))
    dl = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=workers, worker_init_fn=init_worker,
                                     persistent_workers=False, prefetch_factor=2)
    it = iter(dl)
    x = next(it)  # warm-up: workers started, first batch
    if on_batch:
        on_batch(x)
    t0 = time.perf_counter()
    n = 0
    for x in it:
        if on_batch:
            on_batch(x)
        n += x.shape[0]
    return n / (time.perf_counter() - t0)


def part_loader(args):
    from kornia.augmentation.auto import RandAugment as KorniaRandAugment

    data = photos(32)
    torch.manual_seed(0)
    kornia_ra = KorniaRandAugment(n=2, m=9 * 3)  # kornia's magnitude runs 0..30
    kornia_step = lambda x: kornia_ra(x.float() / 255)  # noqa: E731
    rows = []
    print(f"before: {loadavg()}")
    rows.append(("pil-ra", loader_rate(data, train_transform(224, randaugment=(9, 0.5)),
                                       args.batches, 64, args.workers)))
    rows.append(("pil-noaug", loader_rate(data, train_transform(224), args.batches, 64, args.workers)))
    rows.append(("kornia-ra", loader_rate(data, CropFlip(224), args.batches, 64, args.workers, kornia_step)))
    x = torch.randint(0, 256, (64, 3, 224, 224), dtype=torch.uint8)
    kornia_step(x)
    times = []
    for _ in range(args.batches):
        t0 = time.perf_counter()
        kornia_step(x)
        times.append(time.perf_counter() - t0)
    rows.append(("kornia-only", 64 / statistics.median(times)))
    print(f"after:  {loadavg()}")
    print(f"\n| pipeline (224 px, batch 64, {args.workers} workers) | images/s |\n|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:.0f} |")


def part_draft(args):
    print(f"before: {loadavg()}")
    print("\n| image | transform | full ms/img | draft ms/img | speed-up | mean abs diff | max abs diff |"
          "\n|---|---|---|---|---|---|---|")
    for size in ((500, 375), (1000, 750), (1600, 1200)):
        data = photos(args.images, size, seed=1)
        for name, full, draft in (
                ("RRC 224", RandomResizedCrop(224), RandomResizedCrop(224, draft=True)),
                ("eval 224", eval_transform(224), eval_transform(224, draft=True))):
            outs, t = {}, {}
            for label, tf in (("full", full), ("draft", draft)):
                res, t0 = [], time.perf_counter()
                for i, d in enumerate(data):
                    img = Image.open(io.BytesIO(d))
                    out = tf(img, random.Random(i), rgb)
                    res.append(np.asarray(out).astype(np.int16) if isinstance(out, Image.Image)
                               else out.numpy().transpose(1, 2, 0).astype(np.int16))
                t[label] = (time.perf_counter() - t0) / len(data) * 1000
                outs[label] = res
            diff = [np.abs(a - b) for a, b in zip(outs["full"], outs["draft"])]
            print(f"| {size[0]}x{size[1]} | {name} | {t['full']:.2f} | {t['draft']:.2f} | "
                  f"{t['full'] / t['draft']:.2f}x | {np.mean([d.mean() for d in diff]):.2f} | "
                  f"{max(int(d.max()) for d in diff)} |")
    print(f"\nafter:  {loadavg()}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=["loader", "draft", "all"], default="all")
    p.add_argument("--batches", type=int, default=6, help="timed batches per loader pipeline")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--images", type=int, default=30, help="images per draft measurement")
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    if args.part in ("loader", "all"):
        part_loader(args)
    if args.part in ("draft", "all"):
        part_draft(args)


if __name__ == "__main__":
    main()
