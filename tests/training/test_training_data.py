"""Data sources: digits, ImageFolder directories (and their errors), Dataset pairs."""
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from archdsl.lang.errors import ArchError, DataError
from archdsl.training.data import materialize, probe


def make_folder(root, classes=("cat", "dog"), per_class=3, mode="RGB", size=(12, 10), splits=("train", "val")):
    rng = np.random.default_rng(0)
    for split in splits:
        for c in classes:
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(per_class):
                shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
                Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(d / f"{i}.png")
    return root


def test_digits_fixed_split_at_requested_size():
    info = probe("digits")
    assert (info.classes, info.channels, info.size) == (10, 1, (32, 32))
    from archdsl.lang.recipe import TrainRecipe
    a = materialize(info, (1, 16, 16), TrainRecipe(**info.recipe))  # the digits recipe, as plan applies it
    b = materialize(probe("digits"), (3, 16, 16))
    assert (len(a.train), len(a.val)) == (info.n_train, info.n_val) == (1437, 360)
    x, y = a.train[0]
    assert x.dtype == torch.uint8 and x.shape == (1, 16, 16)
    assert torch.equal(torch.as_tensor(a.val.labels), torch.as_tensor(b.val.labels))  # same split whatever the shape
    x3, _ = b.train[(0, 5)]  # (index, epoch) keys, as the sampler yields them
    assert torch.equal(x3[0], x3[2])  # grey -> 3 channels
    assert torch.equal(a.val[3][0], a.val.images[3])  # the digits recipe's eval transform keeps the pixels
    counts = np.bincount(a.val.labels)
    assert counts.min() >= 35  # stratified
    assert len(a.mean) == 1 and 0 < a.mean[0] < 1  # grey: measured on the data
    assert info.identity["files"] == 1797 and len(info.identity["fingerprint"]) == 16


def test_image_folder_rgb(tmp_path):
    root = make_folder(tmp_path / "data")
    info = probe(root)
    assert (info.classes, info.channels, info.n_train, info.n_val) == (2, 3, 6, 6)
    assert info.class_names == ["cat", "dog"]
    bundle = materialize(info, (3, 8, 8))
    x, y = bundle.train[(0, 0)]
    assert x.shape == (3, 8, 8) and x.dtype == torch.uint8 and y == 0
    assert bundle.mean == (0.485, 0.456, 0.406)  # normalize auto on RGB: ImageNet's constants
    assert info.identity["files"] == 12 and info.identity["path"] == str(root.resolve())


def test_listing_identity_changes_with_the_files(tmp_path):
    root = make_folder(tmp_path / "d")
    first = probe(root).identity
    (root / "train" / "cat" / "0.png").rename(root / "train" / "cat" / "9.png")
    assert probe(root).identity["fingerprint"] != first["fingerprint"]


def test_image_folder_grey_gives_one_channel(tmp_path):
    info = probe(make_folder(tmp_path / "d", mode="L"))
    assert info.channels == 1
    assert materialize(info, (1, 8, 8)).train[0][0].shape == (1, 8, 8)


def test_missing_directory(tmp_path):
    with pytest.raises(DataError, match="does not exist") as e:
        probe(tmp_path / "nope")
    assert e.value.code == "E701"


def test_no_val_folder(tmp_path):
    make_folder(tmp_path / "d", splits=("train",))
    with pytest.raises(DataError, match=r"no `val/` folder \(found: train\)"):
        probe(tmp_path / "d")


def test_empty_train_folder(tmp_path):
    (tmp_path / "d" / "train").mkdir(parents=True)
    (tmp_path / "d" / "val").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        probe(tmp_path / "d")


def test_class_folder_without_images(tmp_path):
    root = make_folder(tmp_path / "d")
    (root / "train" / "bird").mkdir()
    (root / "train" / "bird" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match="bird: class folder has no images"):
        probe(root)


def test_files_outside_class_folders(tmp_path):
    root = make_folder(tmp_path / "d")
    Image.new("RGB", (4, 4)).save(root / "train" / "stray.png")
    with pytest.raises(DataError, match="files outside class folders: stray.png"):
        probe(root)


def test_val_class_unknown_to_train(tmp_path):
    root = make_folder(tmp_path / "d")
    make_folder(tmp_path / "d2", classes=("emu",), splits=("val",))
    (tmp_path / "d2" / "val" / "emu").rename(root / "val" / "emu")
    with pytest.raises(DataError, match="classes not in train/: emu"):
        probe(root)


def test_bad_images_are_samples_not_errors(tmp_path):
    """Nothing is decoded before training: a corrupt, empty or truncated file is found when the
    loop reads it, as a BadSample naming it (the engine then skips or stops)."""
    from archdsl.data.collate import BadSample

    root = make_folder(tmp_path / "d", size=(64, 64))
    broken = root / "train" / "dog" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (root / "train" / "cat" / "empty.jpg").write_bytes(b"")
    cut = root / "val" / "cat" / "0.png"
    cut.write_bytes(cut.read_bytes()[:200])  # valid header, pixels cut off
    info = probe(root)
    assert info.n_train == 8
    bundle = materialize(info, (3, 8, 8))
    samples = [bundle.train[i] for i in range(len(bundle.train))] + [bundle.val[i] for i in range(len(bundle.val))]
    bad = sorted(s.path for s in samples if isinstance(s, BadSample))
    assert bad == sorted([str(broken), str(root / "train" / "cat" / "empty.jpg"), str(cut)])


class Pairs(Dataset):
    classes = ["a", "b", "c"]

    def __init__(self, n, channels=1, size=20):
        g = torch.Generator().manual_seed(n)
        self.x = torch.rand(n, channels, size, size, generator=g)
        self.y = torch.arange(n) % 3

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def test_dataset_pair_resized_and_channels_expanded():
    info = probe((Pairs(12), Pairs(6)))
    assert (info.classes, info.channels, info.size) == (3, 1, (20, 20))
    bundle = materialize(info, (3, 8, 8))
    x, y = bundle.train[4]
    assert x.shape == (3, 8, 8) and x.dtype == torch.uint8 and y == 1
    assert torch.equal(x[0], x[1])  # grey -> 3 channels


def test_empty_dataset_and_unknown_data():
    with pytest.raises(DataError, match="val dataset is empty"):
        probe((Pairs(3), Pairs(0)))
    with pytest.raises(ArchError, match="cannot use int"):
        probe(42)
