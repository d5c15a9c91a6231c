"""Each bug benchmarks/hostile_sweep.py found, as the case it found it with, asserting the clean
outcome: an `ArchError` (with a code) from the API, exit 1 with `error[Ennn]` or exit 2 with a
usage line from the CLI, never a traceback, a hang or exit 0 on nonsense."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from archdsl.cli import app
from archdsl.data.pack import pack
from archdsl.data.shards import expand_braces, find_shards
from archdsl.lang.errors import ArchError, DataError

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str):
    """In-process; a non-ArchError escaping the command fails the test with its traceback."""
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def assert_refused(result, code: int, *words: str) -> None:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.exit_code == code, output
    if code == 1:
        assert re.search(r"error\[E\d{3}\]: ", output), output
    for word in words:
        assert word in output, output


@pytest.fixture
def folder(tmp_path) -> Path:
    """A two-class ImageFolder of 32x32 PNGs."""
    root = tmp_path / "images"
    for split in ("train", "val"):
        for value, cls in ((30, "a"), (220, "b")):
            (root / split / cls).mkdir(parents=True)
            Image.new("RGB", (32, 32), (value,) * 3).save(root / split / cls / "0.png")
    return root


def test_a_brace_range_of_a_trillion_shards_is_refused_at_once():
    # It used to build the list of 10^12 names: `data check` hung.
    t0 = time.monotonic()
    with pytest.raises(DataError, match="more than 1,000,000 shards") as e:
        expand_braces("shards/train-{0..999999999999}.tar")
    assert e.value.code == "E701" and time.monotonic() - t0 < 1
    with pytest.raises(DataError, match="more than"):  # three modest ranges multiply
        expand_braces("s/{0..999}/{0..999}/train-{0..9}.tar")
    assert expand_braces("s/train-{000..002}.tar") == ["s/train-000.tar", "s/train-001.tar", "s/train-002.tar"]


def test_data_check_of_a_huge_brace_range_exits_1(tmp_path):
    assert_refused(cli("data", "check", f"{tmp_path}/train-{{0..999999999999}}.tar"), 1, "more than 1,000,000")


@pytest.mark.parametrize("kwargs, word", [
    ({"shard_size": 0}, "shard_size"),          # was ValueError
    ({"shard_size": "5"}, "shard_size"),        # was TypeError ('<' between str and int)
    ({"shard_size": True}, "shard_size"),
])
def test_pack_api_bad_shard_size_is_an_arch_error(folder, tmp_path, kwargs, word):
    with pytest.raises(ArchError, match=word) as e:
        pack(folder, tmp_path / "out", **kwargs)
    assert e.value.code == "E010"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("root", [None, 7])
def test_pack_api_root_of_the_wrong_type_is_an_arch_error(tmp_path, root):
    with pytest.raises(ArchError, match="root") as e:  # was TypeError from os.fspath
        pack(root, tmp_path / "out")
    assert e.value.code == "E010"


def test_find_shards_of_none_is_an_arch_error():
    with pytest.raises(ArchError, match="not NoneType") as e:  # was TypeError from os.fspath
        find_shards(None)
    assert e.value.code == "E010"


def test_data_pack_into_the_folder_it_packs_is_refused(folder):
    # It used to succeed, leaving train/packed/ with tars: the next listing took it for a class.
    result = cli("data", "pack", folder, "--to", folder / "train" / "packed", "-q")
    assert_refused(result, 1, "inside the folder being packed")
    assert not (folder / "train" / "packed").exists()
    assert sorted(p.name for p in (folder / "train").iterdir()) == ["a", "b"]


def test_apply_with_an_empty_name_is_a_usage_error(tmp_path):
    # `--name ''` was taken as no name (STEP_on_BASE) and printed a spec with exit 0.
    assert_refused(cli("apply", "step09", "--onto", "step00", "--name", ""), 2, "is not a network name")


def test_compile_with_empty_taps_is_a_usage_error():
    # `--taps ''` built the full network, as if no --taps had been given, exit 0.
    assert_refused(cli("compile", "convnext_t", "--set", "input=3x32x32", "--taps", ""), 2, "--taps")
    assert_refused(cli("compile", "convnext_t", "--set", "input=3x32x32", "--taps", " , "), 2, "--taps")


def _lsp(stdin: bytes) -> "subprocess.CompletedProcess[bytes]":
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "archdsl", "lsp"], input=stdin, capture_output=True, env=env,
                          timeout=60)


def test_lsp_refuses_a_terabyte_content_length_without_a_memory_error():
    # pygls read(99999999999999) raised MemoryError with a traceback.
    p = _lsp(b"Content-Length: 99999999999999\r\n\r\n{}")
    err = p.stderr.decode()
    assert "Traceback" not in err and "MemoryError" not in err, err
    assert p.returncode == 1 and "error[E010]" in err and "64 MiB" in err, err


def test_lsp_logs_a_malformed_message_in_one_line_and_keeps_serving():
    # pygls logged the JSONDecodeError with its traceback; the server must go on to the next message.
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "shutdown"}'
    p = _lsp(b"Content-Length: 5\r\n\r\n{{{{{" + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    err = p.stderr.decode()
    assert "Traceback" not in err, err
    assert "JSONDecodeError" in err and p.returncode == 0, err
    assert b'"id": 1' in p.stdout  # the shutdown after the garbage was answered


def test_eval_of_a_junk_pth_names_what_failed_without_torchs_warning(tmp_path):
    # It printed torch's UserWarning (a site-packages path) and `cannot read weights from junk.pth: 1785425525`.
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x80\x04junkjunk")
    result = cli("eval", "convnext_t", "--weights", junk, "--data", "digits")
    assert_refused(result, 1, "error[E786]", "not a checkpoint torch.load can read")
    assert "site-packages" not in result.stdout + result.stderr


def test_a_file_that_cannot_be_written_has_an_error_code(tmp_path):
    # `flatten -o missing/dir/x.arch` said `error: cannot write ...` with no code (rule: every error has one).
    result = cli("flatten", "resnet18", "-o", tmp_path / "no" / "deep" / "x.arch")
    assert_refused(result, 1, "error[E020]", "No such file or directory")


def test_sample_into_an_empty_out_is_a_usage_error(tmp_path, monkeypatch):
    # `sample SPACE -o ''` wrote the points and points.json into the current directory, exit 0.
    monkeypatch.chdir(tmp_path)
    assert_refused(cli("sample", "convnext_space", "-o", "", "-n", "1"), 2, "current directory")
    assert list(tmp_path.iterdir()) == []


def test_sweep_run_into_a_file_names_the_file(tmp_path):
    # It said `error: cannot write the output: File exists` (the mkdir's OSError, taken for stdout's).
    spec = tmp_path / "mine.arch"
    spec.write_text("network mine extends resnet18\n")
    result = cli("sweep", "run", "convnext_space", "-o", spec)
    assert_refused(result, 1, "error[E020]", "is a file")
    assert spec.read_text() == "network mine extends resnet18\n"


def test_sweep_run_with_missing_data_stops_before_the_first_trial(tmp_path):
    # Every trial failed on it, 200 draws long, then a hint blamed the space's constraints.
    result = cli("sweep", "run", "convnext_space", "-o", tmp_path / "sw", "--data", tmp_path / "no", "--trials", "1")
    assert_refused(result, 1, "error[E701]", "does not exist")
    assert "trial" not in result.stdout + result.stderr
