"""listing.py: an ImageFolder by names (sorted, nested, hidden skipped), and every way a folder
can be wrong: missing parts, symbolic-link loops, FIFOs, dangling links, non-UTF-8 names, train
and val sharing files."""
import os

import numpy as np
import pytest
from conftest import image, make_folder

from archdsl.data.listing import Paths, list_folder, list_split
from archdsl.lang.errors import DataError


def code_of(fn, *args, **kw):
    with pytest.raises(DataError) as e:
        fn(*args, **kw)
    return e.value


def test_lists_sorted_nested_and_skips_hidden(folder):
    os.makedirs(os.path.join(folder, "train", "dog", "sub", "deeper"))
    image(99).save(os.path.join(folder, "train", "dog", "sub", "deeper", "z.JPG"))
    image(98).save(os.path.join(folder, "train", "dog", ".hidden.png"))
    os.makedirs(os.path.join(folder, "train", "dog", ".cache"))
    image(97).save(os.path.join(folder, "train", "dog", ".cache", "x.png"))
    open(os.path.join(folder, "train", "dog", "notes.txt"), "w").close()
    os.makedirs(os.path.join(folder, "train", ".git"))
    f = list_folder(folder)
    assert f.classes == ["cat", "dog", "eel"]
    rel = [os.path.relpath(p, folder) for p in f.train.files]
    assert rel == sorted(rel, key=lambda r: r.split(os.sep)[1:2]) and len(rel) == 13
    dog = [r for r in rel if r.startswith("train/dog/")]
    assert dog == ["train/dog/img0.png", "train/dog/img1.png", "train/dog/img2.png",
                   "train/dog/img3.png", "train/dog/sub/deeper/z.JPG"]
    assert f.train.labels.tolist() == [0] * 4 + [1] * 5 + [2] * 4
    assert f.val.labels.tolist() == [0, 0, 1, 1, 2, 2]


def test_val_may_use_a_subset_of_classes_and_list_split_alone(folder):
    import shutil

    shutil.rmtree(os.path.join(folder, "val", "cat"))
    f = list_folder(folder)
    assert f.val.labels.tolist() == [1, 1, 2, 2]  # indices of the train classes
    classes, val = list_split(folder, "val")  # V's val-only use: its own class list
    assert classes == ["dog", "eel"] and val.labels.tolist() == [0, 0, 1, 1]
    e = code_of(list_split, folder, "val", classes=["dog"])
    assert e.code == "E701" and "eel" in e.message


@pytest.mark.parametrize("case, code, words", [
    ("no root", "E701", "does not exist"),
    ("root is a file", "E701", "is not a directory"),
    ("no val", "E701", "no `val/` folder"),
    ("stray file", "E701", "files outside class folders"),
    ("unknown val class", "E701", "classes not in train/"),
    ("no classes", "E703", "no class folders"),
    ("empty class", "E703", "class folder has no images"),
])
def test_layout_errors_keep_the_codes_of_training_data(tmp_path, case, code, words):
    root = str(tmp_path / "d")
    if case == "root is a file":
        open(root, "w").close()
    elif case != "no root":
        make_folder(root)
        if case == "no val":
            import shutil
            shutil.rmtree(os.path.join(root, "val"))
        elif case == "stray file":
            image(0).save(os.path.join(root, "train", "loose.png"))
        elif case == "unknown val class":
            os.makedirs(os.path.join(root, "val", "fox"))
            image(0).save(os.path.join(root, "val", "fox", "a.png"))
        elif case == "no classes":
            import shutil
            shutil.rmtree(os.path.join(root, "train"))
            os.makedirs(os.path.join(root, "train"))
        elif case == "empty class":
            os.makedirs(os.path.join(root, "train", "fox"))
    e = code_of(list_folder, root)
    assert e.code == code and words in e.message and e.hint


def test_a_symlink_loop_is_refused_not_followed_forever(folder):
    os.symlink("..", os.path.join(folder, "train", "cat", "loop"))
    e = code_of(list_folder, folder)
    assert e.code == "E701" and "symbolic-link loop" in e.message


def test_a_file_link_loop_and_a_dangling_link_are_bad_files(folder):
    loop = os.path.join(folder, "train", "cat", "self.jpg")
    os.symlink("self.jpg", loop)
    e = code_of(list_folder, folder)
    assert e.code == "E702" and "self.jpg" in e.message and "--skip-bad-images" in e.hint
    dangling = os.path.join(folder, "train", "dog", "gone.png")
    os.symlink("nowhere.png", dangling)
    f = list_folder(folder, skip_bad=True)
    why = dict(f.train.skipped)
    assert set(why) == {loop, dangling} and why[dangling] == "a symbolic link to nothing"
    assert loop not in list(f.train.files) and len(f.train) == 12


def test_a_fifo_is_never_opened(folder):
    fifo = os.path.join(folder, "train", "eel", "pipe.jpg")
    os.mkfifo(fifo)  # opening it for reading would block forever
    e = code_of(list_folder, folder)
    assert e.code == "E702" and "not a regular file (a FIFO)" in e.message
    f = list_folder(folder, skip_bad=True)
    assert f.train.skipped == [(fifo, "not a regular file (a FIFO)")]


def test_a_non_utf8_name_is_kept_byte_exact_and_printed_escaped(folder):
    raw = os.path.join(os.fsencode(folder), b"train", b"cat", b"caf\xe9.png")
    with open(raw, "wb") as fh:
        image(5).save(fh, format="PNG")
    f = list_folder(folder)
    name = [p for p in f.train.files if "caf" in p][0]
    assert os.fsencode(name) == raw  # surrogateescape round trip
    from archdsl.data.datasets import FolderDataset
    x, y = FolderDataset(f.train.files, f.train.labels, None)[list(f.train.files).index(name)]
    assert x.shape == (3, 16, 24) and y == 0
    os.mkfifo(os.path.join(os.fsencode(folder), b"train", b"cat", b"\xff.jpg"))
    text = code_of(list_folder, folder).render()
    text.encode("utf-8")  # no lone surrogate reaches the terminal
    assert "\\udcff.jpg" in text


def test_train_and_val_may_not_share_files(folder):
    os.symlink(os.path.join(folder, "val", "eel"), os.path.join(folder, "train", "eel2"))
    e = code_of(list_folder, folder)
    assert e.code == "E701" and "share files" in e.message
    os.remove(os.path.join(folder, "train", "eel2"))
    os.link(os.path.join(folder, "val", "cat", "img0.png"), os.path.join(folder, "train", "cat", "x.png"))
    e = code_of(list_folder, folder)
    assert "train/cat/x.png" in e.message and "val/cat/img0.png" in e.message


def test_hard_links_within_one_split_are_fine_and_identity_tracks_sizes(folder):
    os.link(os.path.join(folder, "train", "cat", "img0.png"), os.path.join(folder, "train", "cat", "img9.png"))
    f = list_folder(folder)
    first = f.identity()
    assert first["files"] == 19 and len(first["fingerprint"]) == 32
    assert list_folder(folder).identity() == first
    with open(os.path.join(folder, "val", "dog", "img0.png"), "ab") as fh:
        fh.write(b"\0")
    assert list_folder(folder).identity()["fingerprint"] != first["fingerprint"]


def test_paths_pack_names_into_one_buffer():
    names = ["a/b.png", "c\udcff.jpg", "", "ü/x.tif"]
    p = Paths(names)
    assert list(p) == names and len(p) == 4 and p[-1] == "ü/x.tif"
    assert isinstance(p._blob, np.ndarray) and p.nbytes < 200
    with pytest.raises(IndexError):
        p[4]
