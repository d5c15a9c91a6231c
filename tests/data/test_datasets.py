"""datasets.py + collate.py + seeding.py: a sample's augmentation depends on (seed, epoch,
index) only (not on workers), a bad file is a BadSample, batches carry the bad ones apart."""
import os
import random

import numpy as np
import torch
from torch.utils.data import DataLoader

from archdsl.data.collate import BadSample, Batch, collate
from archdsl.data.datasets import FolderDataset, probe_channels
from archdsl.data.listing import list_folder
from archdsl.data.sampler import EpochSampler
from archdsl.data.seeding import sample_seed
from archdsl.data.transforms import eval_transform, train_transform


def crop_transform(img, rng, convert):
    """A test transform drawing from rng: a random 8x8 crop of the converted image."""
    img = convert(img)
    x, y = rng.randrange(img.width - 8), rng.randrange(img.height - 8)
    a = np.asarray(img.crop((x, y, x + 8, y + 8)), np.uint8)
    return torch.from_numpy(a.copy()).permute(2, 0, 1)


def test_sample_seed_is_a_64_bit_mix():
    seeds = {sample_seed(s, e, i) for s in range(3) for e in range(20) for i in range(200)}
    assert len(seeds) == 3 * 20 * 200 and all(0 <= v < 2 ** 64 for v in seeds)
    assert sample_seed(0, 1, 0) != sample_seed(0, 0, 1) != sample_seed(1, 0, 0)
    assert sample_seed(7, 3, 5) == sample_seed(7, 3, 5)
    values = [sample_seed(0, 0, i) for i in range(2000)]  # a list: a set would order by value
    bits = np.array([[(v >> b) & 1 for b in range(64)] for v in values])
    assert np.abs(bits.mean(0) - 0.5).max() < 0.05  # every bit used


def test_augmentation_depends_on_the_sample_not_on_workers(folder):
    f = list_folder(folder)
    ds = FolderDataset(f.train.files, f.train.labels, crop_transform, channels=3, seed=4)
    one = ds[(5, 2)]
    assert torch.equal(one[0], ds[(5, 2)][0]) and one[1] == int(f.train.labels[5])
    assert not torch.equal(one[0], ds[(5, 3)][0])  # another epoch, another crop
    rng = random.Random(sample_seed(4, 2, 5))
    assert torch.equal(one[0], crop_transform(__import__("PIL.Image").Image.open(f.train.files[5]), rng,
                                              lambda im: im.convert("RGB")))
    sampler = EpochSampler(len(ds), seed=4)
    sampler.set_epoch(2)
    batches = {}
    for workers in (0, 2):
        dl = DataLoader(ds, batch_size=5, sampler=sampler, num_workers=workers, collate_fn=collate)
        batches[workers] = list(dl)
    for a, b in zip(batches[0], batches[2]):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert sum(len(b.y) for b in batches[0]) == len(ds)


def test_bad_files_are_bad_samples_and_collate_keeps_them_apart(folder):
    bad = os.path.join(folder, "train", "cat", "img1.png")
    data = open(bad, "rb").read()
    open(bad, "wb").write(data[: len(data) // 2])
    empty = os.path.join(folder, "train", "dog", "img0.png")
    open(empty, "wb").close()
    f = list_folder(folder)
    ds = FolderDataset(f.train.files, f.train.labels, eval_transform((8, 8)), channels=3)
    samples = [ds[i] for i in range(len(ds))]
    bads = [s for s in samples if isinstance(s, BadSample)]
    assert sorted(b.path for b in bads) == sorted([bad, empty])
    assert any("truncated" in b.message for b in bads) and any("empty" in b.message for b in bads)
    batch = collate(samples)
    assert isinstance(batch, Batch) and batch.x.shape == (10, 3, 8, 8) and batch.x.dtype == torch.uint8
    assert batch.y.dtype == torch.long and len(batch.bad) == 2
    none = collate(bads)
    assert none.x.shape == (0,) and none.y.shape == (0,) and len(none.bad) == 2
    os.remove(f.train.files[3])  # gone after listing: still a BadSample, not an exception
    assert isinstance(ds[3], BadSample) and "cannot" in ds[3].message


def test_with_the_recipe_transforms_and_grey_data(tmp_path):
    from conftest import make_folder

    root = make_folder(str(tmp_path / "g"), ext=".png")
    for dp, _, fs in os.walk(root):
        for name in fs:
            p = os.path.join(dp, name)
            __import__("PIL.Image").Image.open(p).convert("L").save(p)
    f = list_folder(root)
    grey = FolderDataset(f.train.files, f.train.labels, None, channels=3)
    assert probe_channels(grey) == 1
    ds = FolderDataset(f.train.files, f.train.labels,
                       train_transform((12, 10), randaugment=(9, 0.5), channels=1), channels=1, seed=1)
    x, y = ds[(0, 0)]
    assert x.shape == (1, 12, 10) and x.dtype == torch.uint8
    rgb = FolderDataset(f.train.files, f.train.labels, eval_transform((8, 8)), channels=3)[(0, 0)][0]
    assert rgb.shape == (3, 8, 8) and torch.equal(rgb[0], rgb[1])  # grey in a colour set
