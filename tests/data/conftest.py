"""Tiny generated images for the data tests: a few dozen files of a few dozen pixels."""
import os

import numpy as np
import pytest
from PIL import Image


def image(seed: int, size=(24, 16), mode="RGB") -> Image.Image:
    """A small image whose pixels depend on `seed` (noise over a seed-dependent colour)."""
    rng = np.random.default_rng(seed)
    w, h = size
    a = rng.integers(0, 60, size=(h, w, 3)) + (rng.integers(0, 190, size=3))
    img = Image.fromarray(a.astype(np.uint8), "RGB")
    return img if mode == "RGB" else img.convert(mode)


def make_folder(root, classes=("cat", "dog", "eel"), train=4, val=2, ext=".png", size=(24, 16)):
    """root/train/<class>/img<k><ext> and root/val/<class>/..., every image different."""
    seed = 0
    for split, n in (("train", train), ("val", val)):
        for c in classes:
            d = os.path.join(root, split, c)
            os.makedirs(d, exist_ok=True)
            for k in range(n):
                image(seed, size).save(os.path.join(d, f"img{k}{ext}"))
                seed += 1
    return root


@pytest.fixture
def folder(tmp_path):
    return make_folder(str(tmp_path / "data"))
