"""Shards: `data pack` writes WebDataset tars (read back by webdataset itself, an independent
reader), archdsl reads them map-style with no duplicate or lost sample over ranks and workers,
and a missing or truncated shard is named, never read short."""
import hashlib
import json
import os

import pytest
import torch
from conftest import make_folder
from torch.utils.data import DataLoader
from typer.testing import CliRunner

from archdsl.data.collate import collate
from archdsl.data.datasets import FolderDataset
from archdsl.data.listing import list_folder
from archdsl.data.pack import pack
from archdsl.data.sampler import EpochSampler
from archdsl.data.shards import ShardDataset, expand_braces, find_shards, is_shards, open_split
from archdsl.lang.errors import DataError


@pytest.fixture
def packed(tmp_path):
    root = make_folder(str(tmp_path / "d"), classes=("a", "b", "c"), train=6, val=2, ext=".jpg")
    pack(root, tmp_path / "sh", shard_size=5)
    return root, str(tmp_path / "sh")


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_pack_writes_shards_and_an_index(packed, tmp_path):
    root, out = packed
    assert sorted(os.listdir(out)) == ["index-train.npz", "index-val.npz", "index.json"] \
        + [f"train-00000{i}.tar" for i in range(4)] + ["val-000000.tar", "val-000001.tar"]
    index = json.load(open(os.path.join(out, "index.json")))
    assert index["classes"] == ["a", "b", "c"]
    assert index["splits"]["train"]["count"] == 18 and index["splits"]["val"]["count"] == 6
    for split in ("train", "val"):
        for e in index["splits"][split]["shards"]:
            p = os.path.join(out, e["name"])
            assert e["sha256"] == sha(p) and e["bytes"] == os.path.getsize(p)
    assert [e["count"] for e in index["splits"]["train"]["shards"]] == [5, 5, 5, 3]
    pack(root, tmp_path / "again", shard_size=5)  # reproducible: byte-identical shards
    assert all(sha(os.path.join(out, n)) == sha(tmp_path / "again" / n) for n in os.listdir(out)
               if n.endswith((".tar", ".json")))
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no partial folder left


def test_webdataset_reads_the_shards_as_archdsl_does(packed):
    import webdataset as wds

    root, out = packed
    src = find_shards(out)
    ours = ShardDataset(open_split(src, "train"), None)
    folder = list_folder(root)
    by_bytes = {sha(p): (p, int(y)) for p, y in zip(folder.train.files, folder.train.labels)}
    theirs = list(wds.WebDataset(src.train, shardshuffle=False))
    assert len(theirs) == len(ours) == 18
    for i, sample in enumerate(theirs):
        path, label = by_bytes[hashlib.sha256(sample["jpg"]).hexdigest()]  # the file's own bytes
        assert int(sample["cls"]) == label == ours[i][1]
        x, _ = FolderDataset([path], [label], None)[0]
        assert torch.equal(ours[i][0], x)


def test_brace_patterns_and_val_shards(packed):
    assert expand_braces("s/train-{000..002}.tar") == ["s/train-000.tar", "s/train-001.tar", "s/train-002.tar"]
    assert expand_braces("{a,b}-{8..10}") == ["a-8", "a-9", "a-10", "b-8", "b-9", "b-10"]
    _, out = packed
    src = find_shards(os.path.join(out, "train-{000000..000003}.tar"))
    assert [os.path.basename(p) for p in src.train] == [f"train-00000{i}.tar" for i in range(4)]
    assert [os.path.basename(p) for p in src.val] == ["val-000000.tar", "val-000001.tar"]
    assert src.classes == ["a", "b", "c"] and is_shards(out) and not is_shards(os.path.dirname(out))
    os.remove(os.path.join(out, "index.json"))  # shards from elsewhere: no index
    src = find_shards(os.path.join(out, "train-{000000..000001}.tar"))
    assert len(src.val) == 2 and src.classes is None
    assert len(open_split(src, "train")) == 10


def test_a_missing_shard_is_named(packed):
    _, out = packed
    with pytest.raises(DataError) as e:
        find_shards(os.path.join(out, "train-{000000..000004}.tar"))
    assert e.value.code == "E705" and "train-000004.tar" in e.value.message
    os.remove(os.path.join(out, "val-000001.tar"))
    with pytest.raises(DataError) as e:
        find_shards(out)  # index.json lists it
    assert "val-000001.tar" in e.value.message


@pytest.mark.parametrize("cut", ["mid-member", "at a member boundary"])
def test_a_truncated_shard_is_named_never_read_short(packed, cut):
    import tarfile

    _, out = packed
    path = os.path.join(out, "train-000001.tar")
    with tarfile.open(path) as tf:
        members = tf.getmembers()
    end = members[4].offset  # the header of the 3rd sample's image: a boundary
    size = end + 700 if cut == "mid-member" else end
    with open(path, "r+b") as f:
        f.truncate(size)
    with pytest.raises(DataError) as e:
        open_split(find_shards(out), "train")  # the index says how long it was
    assert e.value.code == "E705" and "train-000001.tar" in e.value.message
    os.remove(os.path.join(out, "index.json"))  # no index: the tar itself tells
    with pytest.raises(DataError) as e:
        open_split(find_shards(out), "train")
    assert "train-000001.tar" in e.value.message and "truncated" in e.value.message


def test_ranks_and_workers_read_each_sample_once_and_resume(packed):
    _, out = packed
    idx = open_split(find_shards(out), "train")
    ds = ShardDataset(idx, lambda img, rng, convert: torch.tensor([rng.randrange(1000)]))
    seen = []
    for rank in range(2):
        s = EpochSampler(len(ds), world=2, rank=rank, seed=1)
        s.set_epoch(1)
        for b in DataLoader(ds, batch_size=2, sampler=s, num_workers=2, collate_fn=collate):
            seen += b.x[:, 0].tolist()
    order = EpochSampler(len(ds), seed=1)
    order.set_epoch(1)
    want = [ds[(i, 1)][0].item() for i in order.order().tolist()]
    assert sorted(seen) == sorted(want) and len(seen) == 18  # 18 = 9 per rank: nothing lost
    s = EpochSampler(len(ds), world=3, rank=0, seed=1)  # resume on 3 ranks after 8 samples
    s.set_epoch(1)
    s.set_position(8)
    assert [ds[k][0].item() for k in s] == want[8:17:3]  # 10 left, 3 per rank (drop_last)


def test_cli_pack(tmp_path):
    from archdsl.cli.main import app

    root = make_folder(str(tmp_path / "d"), train=2, val=1)
    open(os.path.join(root, "train", "cat", "zero.png"), "wb").close()
    run = CliRunner().invoke(app, ["data", "pack", root, "--to", str(tmp_path / "s")])
    assert run.exit_code == 1 and "E702" in run.output and "zero.png" in run.output
    assert "Traceback" not in run.output and not os.path.exists(tmp_path / "s")
    run = CliRunner().invoke(app, ["data", "pack", root, "--to", str(tmp_path / "s"),
                                   "--skip-bad-images", "--shard-size", "4"])
    assert run.exit_code == 0, run.output
    assert "train: 6 images in 2 shard(s)" in run.output and "skipped 1" in run.output
    run = CliRunner().invoke(app, ["data", "pack", root, "--to", str(tmp_path / "s")])
    assert run.exit_code == 1 and "not an empty folder" in run.output
    run = CliRunner().invoke(app, ["data", "pack", str(tmp_path / "nope"), "--to", str(tmp_path / "t")])
    assert run.exit_code == 1 and "E701" in run.output and "does not exist" in run.output


def test_cli_check_folder_and_shards(packed):
    from archdsl.cli.main import app

    root, out = packed
    run = CliRunner().invoke(app, ["data", "check", root])
    assert run.exit_code == 0 and "train: 18 images" in run.output and "classes: 3 (a, b, c)" in run.output
    run = CliRunner().invoke(app, ["data", "check", out])
    assert run.exit_code == 0 and "train: 18 images in 4 shard(s)" in run.output
    run = CliRunner().invoke(app, ["data", "check", os.path.join(out, "train-{000000..000009}.tar")])
    assert run.exit_code == 1 and "E705" in run.output and "6 train shard(s) missing" in run.output
    assert "train-000004.tar" in run.output and "and 3 more" in run.output


@pytest.mark.parametrize("fmt", ["PAX_FORMAT", "GNU_FORMAT", "USTAR_FORMAT"])
def test_the_header_walk_equals_tarfiles(tmp_path, fmt):
    """shards._members (a fast header walk) against Python's tarfile on the same archive:
    long names (PAX records, GNU long-name members, ustar prefixes), a folder, an empty file."""
    import io
    import tarfile

    from archdsl.data.shards import _members

    path = str(tmp_path / "t.tar")
    names = ["a.jpg", "p" * 90 + "/" + "q" * 60 + ".cls", "e.cls"]  # the 2nd: a ustar prefix
    if fmt != "USTAR_FORMAT":  # too long for ustar: a PAX path record / a GNU long-name member
        names += ["d/" + "x" * 120 + ".jpg", "ü" * 70 + ".png"]
    with tarfile.open(path, "w", format=getattr(tarfile, fmt)) as tf:
        d = tarfile.TarInfo("folder")
        d.type = tarfile.DIRTYPE
        tf.addfile(d)
        for k, name in enumerate(names):
            data = bytes([k]) * (k * 700)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    with tarfile.open(path) as tf:
        want = [(m.name, m.offset_data, m.size, m.isfile()) for m in tf]
    got = [(n, o, s, f) for n, o, s, f, _ in _members(path)]
    assert got == want


@pytest.mark.parametrize("pattern", [None, "train-{000001..000002}.tar", "train-{000003,000000}.tar"])
def test_the_saved_index_equals_the_header_walk(packed, pattern):
    from archdsl.data.shards import index_shards

    _, out = packed
    src = find_shards(os.path.join(out, pattern) if pattern else out)
    saved, walked = open_split(src, "train"), index_shards(src.train)
    assert saved.shards == walked.shards and list(saved.keys) == list(walked.keys)
    for k in ("shard", "offset", "size", "label"):
        assert getattr(saved, k).tolist() == getattr(walked, k).tolist()


def test_a_stale_or_broken_saved_index_is_not_trusted(packed):
    _, out = packed
    open(os.path.join(out, "index-val.npz"), "wb").write(b"not a zip")
    assert len(open_split(find_shards(out), "val")) == 6  # walked instead
    path = os.path.join(out, "train-000002.tar")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 1024)
    with pytest.raises(DataError) as e:  # the saved index is not used for a changed shard
        open_split(find_shards(out), "train")
    assert "train-000002.tar" in e.value.message


def test_cli_check_verify_names_a_corrupt_shard(packed):
    from archdsl.cli.main import app

    root, out = packed
    run = CliRunner().invoke(app, ["data", "check", out, "--verify"])
    assert run.exit_code == 0 and "sha256: 6 shard(s) match index.json" in run.output
    path = os.path.join(out, "val-000001.tar")
    data = bytearray(open(path, "rb").read())
    data[700] ^= 0xFF  # one flipped bit inside an image: same size, same headers
    open(path, "wb").write(bytes(data))
    run = CliRunner().invoke(app, ["data", "check", out])
    assert run.exit_code == 0  # sizes and headers still agree
    run = CliRunner().invoke(app, ["data", "check", out, "--verify"])
    assert run.exit_code == 1 and "E705" in run.output and "val-000001.tar" in run.output
    assert "sha256 differs" in run.output
    run = CliRunner().invoke(app, ["data", "check", root, "--verify"])
    assert run.exit_code == 2
