"""Generate a realistic ImageFolder for the data benchmarks: JPEGs of about 500x375 (quality 90),
K classes a network can learn (a class is a shape in a hue, drawn at a random place and size
over a noisy, textured background, with a distractor of another class's hue).

    python benchmarks/make_folder.py /tmp/folder2500 -n 2500 -k 10
    python benchmarks/make_folder.py /tmp/folder20k --from /tmp/folder2500 --hardlink-to-n 20000

The first writes n images (90% train, 10% val, classes balanced). The second makes a larger
folder of hard links to those files (no new pixels, no new disk space), each split linking only
its own files, so train and val still share none.
"""
from __future__ import annotations

import argparse
import colorsys
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

SIZES = [(500, 375), (375, 500), (500, 333), (500, 400), (450, 350), (512, 384)]
SHAPES = ("ellipse", "rectangle", "triangle", "cross")


def image(rng: np.random.Generator, c: int, k: int) -> Image.Image:
    w, h = SIZES[rng.integers(len(SIZES))]
    # background: a smooth random gradient plus per-pixel noise
    base = rng.uniform(40, 200, size=3)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    slope = rng.uniform(-0.15, 0.15, size=(2, 3))
    bg = base + gx[..., None] * slope[0] + gy[..., None] * slope[1]
    bg += rng.normal(0, 12, size=(h, w, 3))
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)

    def colour(cls: int) -> tuple[int, int, int]:
        hue = (cls / k + rng.uniform(-0.03, 0.03)) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0))
        return int(r * 255), int(g * 255), int(b * 255)

    def shape(kind: str, fill, scale: float) -> None:
        s = int(min(w, h) * scale)
        x0, y0 = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
        box = (x0, y0, x0 + s, y0 + s)
        if kind == "ellipse":
            draw.ellipse(box, fill=fill)
        elif kind == "rectangle":
            draw.rectangle(box, fill=fill)
        elif kind == "triangle":
            draw.polygon([(x0 + s // 2, y0), (x0, y0 + s), (x0 + s, y0 + s)], fill=fill)
        else:
            t = s // 3
            draw.rectangle((x0 + t, y0, x0 + 2 * t, y0 + s), fill=fill)
            draw.rectangle((x0, y0 + t, x0 + s, y0 + 2 * t), fill=fill)

    other = (c + 1 + int(rng.integers(k - 1))) % k if k > 1 else c
    shape(SHAPES[int(rng.integers(len(SHAPES)))], colour(other), rng.uniform(0.1, 0.2))
    shape(SHAPES[c % len(SHAPES)], colour(c), rng.uniform(0.25, 0.6))
    noise = rng.normal(0, 6, size=(h, w, 3))
    return Image.fromarray(np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8))


def generate(root: str, n: int, k: int, seed: int = 0, val_fraction: float = 0.1) -> None:
    rng = np.random.default_rng(seed)
    n_val = max(k, int(round(n * val_fraction)))
    for i in range(n):
        split = "val" if i < n_val else "train"
        c = i % k
        d = os.path.join(root, split, f"class{c:03d}")
        os.makedirs(d, exist_ok=True)
        image(rng, c, k).save(os.path.join(d, f"img{i:07d}.jpg"), quality=90)
        if (i + 1) % 500 == 0:
            print(f"{i + 1}/{n}", file=sys.stderr)


def hardlink(src: str, dst: str, n: int) -> None:
    """dst gets n files: hard links to src's files, copy by copy, each split from itself."""
    files = {s: sorted(os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(src, s))
                       for f in fs) for s in ("train", "val")}
    total = sum(len(v) for v in files.values())
    want = {s: round(n * len(files[s]) / total) for s in files}
    for s, paths in files.items():
        for j in range(want[s]):
            p = paths[j % len(paths)]
            rel = os.path.relpath(p, src)
            stem, ext = os.path.splitext(rel)
            out = os.path.join(dst, f"{stem}_{j // len(paths)}{ext}")
            os.makedirs(os.path.dirname(out), exist_ok=True)
            os.link(p, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root")
    ap.add_argument("-n", type=int, default=2500, help="images to generate")
    ap.add_argument("-k", type=int, default=10, help="classes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--from", dest="src", help="with --hardlink-to-n: the folder to link to")
    ap.add_argument("--hardlink-to-n", "--hardlink-to-N", type=int,
                    help="make ROOT hold this many hard links to --from")
    a = ap.parse_args()
    if os.path.exists(a.root) and os.listdir(a.root):
        ap.error(f"{a.root} exists and is not empty")
    if a.hardlink_to_n:
        if not a.src:
            ap.error("--hardlink-to-n needs --from FOLDER")
        hardlink(a.src, a.root, a.hardlink_to_n)
    else:
        generate(a.root, a.n, a.k, a.seed)


if __name__ == "__main__":
    main()
