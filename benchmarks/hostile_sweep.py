"""The hostile sweep: every `archdsl` command and the Python API, driven as a user with bad
intentions would, in subprocesses with bounded timeouts. Prints a table of counts per command.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/hostile_sweep.py [--jobs 2] [--timeout 60]
        [--only CMD] [--show bugs|weak|all]

Each case is one command line (or one API call) plus the files it is run against. Outcomes:
  clean  exit 1 with an `error[Ennn]:` line or exit 2 with a usage error, no traceback, the
         case's key word (the bad path, option or value) named in the message; or, for a case
         whose input is legal though odd, exit 0.
  weak   clean, but the message misleads: it does not name what is wrong (the case's key word),
         carries no error code, or leaks Python internals (a site-packages path, `Errno`).
  bug    a traceback, a hang past the timeout, a signal, exit 0 on nonsense, or an existing
         file changed by a command that failed.
Exit status: 1 if any bug, else 0.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = ["--set", "widths=8,16,32,64", "--set", "depths=1,1,1,1", "--set", "input=3x32x32"]
TINY_ARGS = ["--set", "widths=8,16,32,64", "--set", "depths=1,1,1,1"]


@dataclass
class Case:
    group: str
    name: str
    argv: list[str] | None = None          # CLI arguments after `python -m archdsl`
    api: str | None = None                 # or Python code calling the API (runs in the API batch)
    reject: bool = True                    # nonsense: exit 0 is a bug
    key: str | None = None                 # a word the error message must contain (else weak)
    stdin: bytes | None = None
    timeout: float | None = None
    outcome: str = ""
    detail: str = ""
    seconds: float = 0.0


# ----------------------------------------------------------------------------- fixtures


def _png(path: Path, value: int, mode: str = "RGB", size: int = 32) -> None:
    from PIL import Image
    import numpy as np
    if mode == "I;16":
        arr = np.full((size, size), value, dtype=np.uint16)
        Image.fromarray(arr).save(path)
        return
    Image.new(mode, (size, size), (value, 255 - value, value // 2) if mode == "RGB" else value).save(path)


def make_fixtures(root: Path) -> dict[str, Path]:
    """Tiny, hostile and legal data, weights and shards under root (made once)."""
    f: dict[str, Path] = {}
    good = root / "good"
    for split in ("train", "val"):
        for ci, cls in enumerate(("a", "b")):
            d = good / split / cls
            d.mkdir(parents=True)
            for i in range(3):
                _png(d / f"{i}.png", 40 + 150 * ci + i)
    f["good"] = good

    def variant(name: str) -> Path:
        p = root / name
        shutil.copytree(good, p, symlinks=True)
        return p

    p = variant("zero_jpeg"); (p / "train" / "a" / "zero.jpg").write_bytes(b""); f["zero_jpeg"] = p
    p = variant("trunc_jpeg")
    buf = io.BytesIO()
    from PIL import Image
    Image.new("RGB", (32, 32), (9, 9, 9)).save(buf, "JPEG")
    (p / "train" / "b" / "cut.jpg").write_bytes(buf.getvalue()[:60]); f["trunc_jpeg"] = p
    p = variant("png16")
    for split in ("train", "val"):
        for ci, cls in enumerate(("a", "b")):
            for i in range(3):
                _png(p / split / cls / f"{i}.png", (1000 + 500 * i) if ci == 0 else (40000 + 9000 * i), "I;16")
    f["png16"] = p
    p = variant("symloop"); os.symlink("loop", p / "train" / "a" / "loop"); os.symlink(".", p / "train" / "b" / "self")
    f["symloop"] = p
    p = root / "train_is_val"; (p / "val").parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(good / "val", p / "val"); os.symlink("val", p / "train"); f["train_is_val"] = p
    p = root / "cls_link"; shutil.copytree(good, p)
    shutil.rmtree(p / "train" / "b"); os.symlink("../val", p / "train" / "b"); f["cls_link"] = p
    p = root / "one_class"; (p / "train" / "a").mkdir(parents=True); (p / "val" / "a").mkdir(parents=True)
    _png(p / "train" / "a" / "0.png", 3); _png(p / "val" / "a" / "0.png", 3); f["one_class"] = p
    p = root / "empty_split"; (p / "train" / "a").mkdir(parents=True); (p / "val" / "a").mkdir(parents=True)
    f["empty_split"] = p
    p = root / "text_as_png"; shutil.copytree(good, p)
    (p / "train" / "a" / "0.png").write_text("not a png at all\n"); f["text_as_png"] = p
    p = root / "fifo_img"; shutil.copytree(good, p); os.mkfifo(p / "train" / "a" / "pipe.png"); f["fifo_img"] = p
    p = root / "bomb"; shutil.copytree(good, p)
    Image.new("L", (12000, 12000)).save(p / "train" / "a" / "huge.png", optimize=False); f["bomb"] = p

    # Shards packed from the good folder by the real CLI, and hostile copies.
    shards = root / "shards"
    env = _env()
    subprocess.run([sys.executable, "-m", "archdsl", "data", "pack", str(good), "--to", str(shards),
                    "--shard-size", "2", "-q"], env=env, check=True, capture_output=True, timeout=120)
    f["shards"] = shards
    names = sorted(p.name for p in shards.glob("train-*.tar"))
    f["shard_names"] = Path(names[0])
    p = root / "shards_trunc"; shutil.copytree(shards, p)
    tar = p / names[0]; tar.write_bytes(tar.read_bytes()[:700]); f["shards_trunc"] = p
    p = root / "shards_missing"; shutil.copytree(shards, p); (p / names[1]).unlink(); f["shards_missing"] = p
    p = root / "shards_nonimage"; shutil.copytree(shards, p)
    with tarfile.open(p / names[0], "a") as t:
        data = b"#!/bin/sh\necho hi\n"
        info = tarfile.TarInfo("zz-evil.jpg"); info.size = len(data); t.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("zz-evil.cls"); info.size = 1; t.addfile(info, io.BytesIO(b"0"))
    f["shards_nonimage"] = p
    p = root / "shards_badcls"; shutil.copytree(shards, p)
    with tarfile.open(p / names[0], "a") as t:
        buf = io.BytesIO(); Image.new("RGB", (32, 32)).save(buf, "PNG"); data = buf.getvalue()
        info = tarfile.TarInfo("zz-x.png"); info.size = len(data); t.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("zz-x.cls"); info.size = 3; t.addfile(info, io.BytesIO(b"-99"))
    f["shards_badcls"] = p
    p = root / "shards_noindex"; shutil.copytree(shards, p); (p / "index.json").write_text("{{{{"); f["shards_noindex"] = p

    # A trained tiny run (digits, 1 epoch) for eval / init-from.
    run = root / "run"
    subprocess.run([sys.executable, "-m", "archdsl", "train", "convnext_t", *TINY_ARGS, "--set", "input=1x32x32",
                    "--data", "digits", "--epochs", "1", "--out", str(run), "-q"],
                   env=env, check=True, capture_output=True, timeout=300)
    f["run"] = run
    (root / "empty.safetensors").write_bytes(b"")
    f["empty_st"] = root / "empty.safetensors"
    hdr = b"{}"
    (root / "zero_tensors.safetensors").write_bytes(struct.pack("<Q", len(hdr)) + hdr)
    f["zero_st"] = root / "zero_tensors.safetensors"
    (root / "junk.pth").write_bytes(b"\x80\x04junkjunk")
    f["junk_pth"] = root / "junk.pth"

    # Paths.
    odd = root / "a [b] c"; odd.mkdir(); f["odd_dir"] = odd
    shutil.copy(REPO / "specs" / "resnet18.arch", odd / "my [net].arch"); f["odd_spec"] = odd / "my [net].arch"
    bad = Path(os.fsdecode(bytes(root) + b"/caf\xe9.arch")); shutil.copy(REPO / "specs" / "resnet18.arch", bad)
    f["nonutf8_spec"] = bad
    fifo = root / "pipe.arch"; os.mkfifo(fifo); f["fifo"] = fifo
    ro = root / "readonly"; ro.mkdir(); f["readonly"] = ro
    # Where nothing may be written: a 0o555 folder, or /sys for root (who ignores permissions).
    f["ro"] = Path("/sys") if os.geteuid() == 0 else ro
    (root / "packs").mkdir(exist_ok=True)
    loop = root / "loop.arch"; os.symlink("loop.arch", loop); f["loop"] = loop
    dir_arch = root / "dir.arch"; dir_arch.mkdir(); f["dir_arch"] = dir_arch
    spec = root / "mine.arch"
    spec.write_text("network mine extends resnet18\nclasses 7\n"); f["spec"] = spec
    gate = root / "gated.arch"
    gate.write_text("network linear extends convnext_t\n"); f["named_linear"] = gate
    return f


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), COLUMNS="120", NO_COLOR="1",
               ARCHDSL_NO_PROGRESS="1")
    env.pop("ARCHDSL_SPEC_PATH", None)
    return env


# ----------------------------------------------------------------------------- cases


def cli_cases(f: dict) -> list[Case]:
    c: list[Case] = []
    add = lambda g, n, argv, **kw: c.append(Case(g, n, argv=[str(a) for a in argv], **kw))  # noqa: E731
    nul = "\x00"
    missing = f["good"].parent / "no" / "such.arch"
    # Spec arguments every spec-taking command shares.
    spec_args = {
        "empty": ("", None), "missing": (missing, "such"), "dir": (f["dir_arch"], "dir.arch"),
        "fifo": (f["fifo"], "pipe.arch"), "loop": (f["loop"], "loop.arch"), "devzero": ("/dev/zero", "zero"),
        "dash": ("-", None), "near_miss": ("convnext_tt", "convnext_t"),
    }
    for cmd in ("check", "compile", "flatten", "fmt", "change"):
        for n, (v, key) in spec_args.items():
            add(cmd, f"spec_{n}", [cmd, v], key=key, timeout=20)
    for cmd in ("check", "compile"):
        add(cmd, "odd_path_brackets", [cmd, f["odd_spec"]], reject=False)
        add(cmd, "nonutf8_path", [cmd, f["nonutf8_spec"]], reject=False)
    # --set nonsense on check and compile.
    sets = {"empty": "", "no_eq": "classes", "unknown": "nosuch=3", "neg_classes": "classes=-1",
            "nan_classes": "classes=nan", "huge_classes": "classes=" + "9" * 40, "huge_digits": "classes=" + "9" * 10001,
            "input_nan": "input=3xnanx32", "input_zero": "input=0x32x32", "depths_neg": "depths=1,-1,1,1",
            "depths_count": "depths=1,1", "widths_float": "widths=8.5,16,32,64", "lr_nan": "train.lr=nan",
            "epochs_neg": "train.epochs=-3", "batch_huge": "train.batch=" + "9" * 30, "nul": "classes=1" + nul[:0] + "\x1b[2J"}
    for n, v in sets.items():
        add("check", f"set_{n}", ["check", "convnext_t", "--set", v], timeout=20)
    for n, v in [("emit_bad", ["--emit", "nope"]), ("emit_empty", ["--emit", ""]),
                 ("out_indices_bad", ["--features", "--out-indices", "9,x"]),
                 ("out_indices_noflag", ["--out-indices", "1"]), ("out_indices_huge", ["--features", "--out-indices", "9" * 50]),
                 ("taps_bad", ["--taps", "stages.99"]), ("taps_empty", ["--taps", ""]),
                 ("taps_and_features", ["--taps", "stem", "--features", "--emit", "json"])]:
        add("compile", n, ["compile", "convnext_t", *TINY, *v], reject=n != "taps_and_features", timeout=30)
    # diff
    add("diff", "missing_b", ["diff", "convnext_t", missing], key="such")
    add("diff", "dir_a", ["diff", f["dir_arch"], "convnext_t"], key="dir.arch")
    add("diff", "fifo_b", ["diff", "convnext_t", f["fifo"]], key="pipe.arch", timeout=20)
    add("diff", "bad_set", ["diff", "convnext_t", "resnet50", "--set", "classes=nan"])
    add("diff", "same", ["diff", "convnext_t", "convnext_t"], reject=False)
    # roadmap / ablate
    for cmd in ("roadmap", "ablate"):
        add(cmd, "missing_dir", [cmd, missing.parent], key="no")
        add(cmd, "a_file", [cmd, f["spec"]], key="mine.arch")
        add(cmd, "empty_dir", [cmd, f["readonly"]], key="readonly")
        add(cmd, "fifo_dir", [cmd, f["fifo"]], timeout=20)
    add("roadmap", "plot_dir", ["roadmap", "--plot", f["readonly"]], key="readonly")
    add("roadmap", "plot_readonly", ["roadmap", "--plot", f["ro"] / "x.png"], key="x.png")
    add("roadmap", "plot_txt", ["roadmap", "--plot", f["odd_dir"] / "x.txt"], key="png")
    add("ablate", "mode_bad", ["ablate", "--mode", "sideways"], key="sideways")
    add("ablate", "out_readonly", ["ablate", "--out", f["ro"] / "sub"], key="sub")
    add("ablate", "out_is_file", ["ablate", "--out", f["spec"]], key="mine.arch")
    # fmt
    add("fmt", "write_fifo", ["fmt", "-w", f["fifo"]], key="pipe.arch", timeout=20)
    add("fmt", "check_nonutf8", ["fmt", "--check", f["nonutf8_spec"]], reject=False)
    add("fmt", "no_args", ["fmt"])
    # flatten / apply -o
    for cmd, base in (("flatten", ["flatten", "resnet18"]), ("apply", ["apply", "step09", "--onto", "step00"])):
        add(cmd, "o_dir", [*base, "-o", f["readonly"]], key="readonly")
        add(cmd, "o_readonly", [*base, "-o", f["ro"] / "x.arch"], key="x.arch")
        add(cmd, "o_missing_parent", [*base, "-o", missing.parent / "deep" / "x.arch"], key="deep")
        add(cmd, "o_empty", [*base, "-o", ""])
        add(cmd, "o_dash", [*base, "-o", "-"], reject=False)
        fifo = f["fifo"].with_name(f"out-{cmd}.fifo"); os.mkfifo(fifo)
        add(cmd, "o_fifo", [*base, "-o", fifo], reject=False, timeout=20)
    add("apply", "onto_missing", ["apply", "step09", "--onto", missing], key="such")
    add("apply", "step_missing", ["apply", "nosuchstep", "--onto", "step00"], key="nosuchstep")
    add("apply", "name_bad", ["apply", "step09", "--onto", "step00", "--name", "1 bad name\n"], key="name")
    add("apply", "name_empty", ["apply", "step09", "--onto", "step00", "--name", ""], key="name")
    add("apply", "onto_itself", ["apply", "step09", "--onto", "step09"], reject=False)
    add("change", "json_root", ["change", "step00", "--json"], reject=False)
    # export
    ex = ["export", "convnext_t", *TINY]
    add("export", "to_txt", [*ex, "--to", f["odd_dir"] / "x.txt"], key="txt")
    add("export", "to_empty", [*ex, "--to", ""])
    add("export", "to_dir", [*ex, "--to", f["readonly"]], key="readonly")
    add("export", "to_readonly", [*ex, "--to", f["ro"] / "m.onnx"], key="m.onnx")
    add("export", "to_dash", [*ex, "--to", "-"])
    add("export", "to_fifo_py", [*ex, "--to", f["odd_dir"] / "p.py"], reject=False)
    add("export", "py_named_linear", ["export", f["named_linear"], *TINY, "--to", f["odd_dir"] / "lin.py"], reject=False)
    add("export", "out_indices_bad", [*ex, "--features", "--out-indices", "a,b", "--to", f["odd_dir"] / "f.py"])
    add("export", "taps_bad", [*ex, "--taps", "nowhere", "--to", f["odd_dir"] / "t.py"], key="nowhere")
    add("export", "spec_fifo", ["export", f["fifo"], "--to", f["odd_dir"] / "q.py"], key="pipe.arch", timeout=20)
    add("export", "existing_onnx_bad_set", ["export", "convnext_t", "--set", "classes=nan", "--to", f["odd_dir"] / "keep.onnx"])
    # draw
    dr = ["draw", "convnext_t", *TINY]
    add("draw", "to_txt", [*dr, "--to", f["odd_dir"] / "x.txt"], key="txt")
    add("draw", "to_empty", [*dr, "--to", ""])
    add("draw", "to_dir", [*dr, "--to", f["readonly"]], key="readonly")
    add("draw", "to_readonly", [*dr, "--to", f["ro"] / "x.png"], key="x.png")
    add("draw", "diff_one", ["draw", "--diff", "convnext_t", "--to", f["odd_dir"] / "d.svg"])
    add("draw", "diff_three", ["draw", "--diff", "convnext_t", "resnet50", "resnet18", "--to", f["odd_dir"] / "d.svg"])
    add("draw", "two_no_diff", ["draw", "convnext_t", "resnet50", "--to", f["odd_dir"] / "d.svg"])
    add("draw", "brackets_ok", [*dr, "--to", f["odd_dir"] / "n [1].svg"], reject=False)
    # train (each a tiny 1-epoch run)
    tr = ["train", "convnext_t", *TINY_ARGS, "--epochs", "1", "-q"]
    out = lambda n: f["good"].parent / "outs" / n  # noqa: E731
    add("train", "data_missing", [*tr, "--data", missing.parent, "--out", out("a")], key="no")
    add("train", "data_empty", [*tr, "--data", "", "--out", out("b")])
    add("train", "data_file", [*tr, "--data", f["spec"], "--out", out("c")], key="mine.arch")
    add("train", "data_fifo", [*tr, "--data", f["fifo"], "--out", out("d")], key="pipe.arch", timeout=40)
    add("train", "data_zero_jpeg", [*tr, "--data", f["zero_jpeg"], "--out", out("e")], key="zero.jpg", timeout=60)
    add("train", "data_trunc_jpeg", [*tr, "--data", f["trunc_jpeg"], "--out", out("f")], key="cut.jpg", timeout=60)
    add("train", "data_text_png", [*tr, "--data", f["text_as_png"], "--out", out("g")], key="0.png", timeout=60)
    add("train", "data_symloop", [*tr, "--data", f["symloop"], "--out", out("h")], key="loop", timeout=60)
    add("train", "data_train_is_val", [*tr, "--data", f["train_is_val"], "--out", out("i")], key="val", timeout=60)
    add("train", "data_cls_link_val", [*tr, "--data", f["cls_link"], "--out", out("j")], key="val", timeout=60)
    add("train", "data_one_class", [*tr, "--data", f["one_class"], "--out", out("k")], reject=False, timeout=60)
    add("train", "data_empty_split", [*tr, "--data", f["empty_split"], "--out", out("l")], timeout=60)
    add("train", "data_fifo_img", [*tr, "--data", f["fifo_img"], "--out", out("m")], key="pipe.png", timeout=60)
    add("train", "data_shards_trunc", [*tr, "--data", f["shards_trunc"], "--out", out("n")], key=str(f["shard_names"]), timeout=60)
    add("train", "data_shards_missing", [*tr, "--data", f["shards_missing"], "--out", out("o")], timeout=60)
    # Members appended after packing: index.json's counts govern (the extras are never read; `data check --verify`
    # names the changed shard), so these train on the packed images.
    add("train", "data_shards_nonimage", [*tr, "--data", f["shards_nonimage"], "--out", out("p")], reject=False, timeout=60)
    add("train", "data_shards_badcls", [*tr, "--data", f["shards_badcls"], "--out", out("q")], reject=False, timeout=60)
    add("train", "data_shards_brace_gap", [*tr, "--data", str(f["shards_missing"]) + "/train-{000000..000002}.tar",
                                           "--out", out("r")], timeout=60)
    add("train", "epochs_neg", [*tr, "--data", "digits", "--epochs", "-1", "--out", out("s")], key="epoch")
    add("train", "epochs_huge", [*tr, "--data", "digits", "--epochs", "9" * 30, "--out", out("t")])
    add("train", "seed_neg", [*tr, "--data", "digits", "--seed", "-1", "--out", out("u")])
    add("train", "out_empty", [*tr, "--data", "digits", "--out", ""], key="out")
    add("train", "out_file", [*tr, "--data", "digits", "--out", f["spec"]], key="mine.arch")
    add("train", "out_readonly", [*tr, "--data", "digits", "--out", f["ro"] / "r"], key="r", timeout=60)
    add("train", "out_in_checkpoints", [*tr, "--data", "digits", "--out", f["run"] / "checkpoints" / "x"], key="checkpoints")
    add("train", "precision_bad", [*tr, "--data", "digits", "--precision", "fp8", "--out", out("v")], key="fp8")
    add("train", "device_bad", [*tr, "--data", "digits", "--device", "tpu:9", "--out", out("w")], key="tpu")
    add("train", "device_cuda_absent", [*tr, "--data", "digits", "--device", "cuda:7", "--out", out("x")], key="cuda")
    add("train", "lr_nan", [*tr, "--data", "digits", "--set", "train.lr=nan", "--out", out("y")], key="lr")
    add("train", "batch_zero", [*tr, "--data", "digits", "--set", "train.batch=0", "--out", out("z")], key="batch")
    add("train", "resume_nothing", [*tr, "--data", "digits", "--resume", "--out", out("aa")], reject=False, timeout=60)
    add("train", "init_from_empty", [*tr, "--data", "digits", "--init-from", f["empty_st"], "--out", out("ab")], key="empty")
    add("train", "init_from_zero", [*tr, "--data", "digits", "--init-from", f["zero_st"], "--out", out("ac")], key="tensor")
    add("train", "init_from_missing", [*tr, "--data", "digits", "--init-from", missing, "--out", out("ad")], key="such")
    add("train", "init_from_pth", [*tr, "--data", "digits", "--init-from", f["junk_pth"], "--out", out("ae")], key="junk.pth")
    add("train", "init_spec_bad", [*tr, "--data", "digits", "--init-from", f["run"], "--init-spec", "nosuch",
                                   "--out", out("af")], key="nosuch")
    # train-roadmap
    add("train-roadmap", "dir_missing", ["train-roadmap", missing.parent, "--epochs", "1"], key="no")
    add("train-roadmap", "data_missing", ["train-roadmap", "--data", missing.parent, "--epochs", "1",
                                          "--out", out("rm1")], key="no")
    add("train-roadmap", "epochs_zero", ["train-roadmap", "--epochs", "0", "--out", out("rm2")], key="epoch")
    add("train-roadmap", "out_file", ["train-roadmap", "--epochs", "1", "--out", f["spec"]], key="mine.arch")
    add("train-roadmap", "precision_bad", ["train-roadmap", "--precision", "x", "--out", out("rm3")], key="precision")
    # eval
    ev = ["eval", "convnext_t", *TINY_ARGS, "--set", "input=1x32x32"]
    add("eval", "weights_missing", [*ev, "--weights", missing, "--data", "digits"], key="such")
    add("eval", "weights_empty_file", [*ev, "--weights", f["empty_st"], "--data", "digits"], key="empty")
    add("eval", "weights_zero_tensors", [*ev, "--weights", f["zero_st"], "--data", "digits"], key="tensor")
    add("eval", "weights_junk_pth", [*ev, "--weights", f["junk_pth"], "--data", "digits"], key="junk.pth")
    add("eval", "weights_dir_norun", [*ev, "--weights", f["readonly"], "--data", "digits"], key="readonly")
    add("eval", "weights_fifo", [*ev, "--weights", f["fifo"], "--data", "digits"], key="pipe.arch", timeout=40)
    add("eval", "data_missing", [*ev, "--weights", f["run"], "--data", missing.parent], key="no")
    add("eval", "data_fifo", [*ev, "--weights", f["run"], "--data", f["fifo"]], key="pipe.arch", timeout=40)
    add("eval", "split_missing", [*ev, "--weights", f["run"], "--data", f["good"], "--split", "test"], key="test")
    add("eval", "split_traversal", [*ev, "--weights", f["run"], "--data", f["good"], "--split", "../../etc"], key="etc")
    add("eval", "batch_zero", [*ev, "--weights", f["run"], "--data", "digits", "--batch", "0"], key="batch")
    add("eval", "workers_neg", [*ev, "--weights", f["run"], "--data", "digits", "--workers", "-1"], key="workers")
    add("eval", "layout_bad", [*ev, "--weights", f["run"], "--data", "digits", "--layout", "keras"], key="keras")
    add("eval", "checkpoint_bad", [*ev, "--weights", f["run"], "--data", "digits", "--checkpoint", "worst"], key="worst")
    add("eval", "mean_nan", [*ev, "--weights", f["run"], "--data", "digits", "--mean", "nan"], key="mean")
    add("eval", "mean_count", [*ev, "--weights", f["run"], "--data", "digits", "--mean", "0.1,0.2"], key="mean")
    add("eval", "std_zero", [*ev, "--weights", f["run"], "--data", "digits", "--std", "0"], key="std")
    add("eval", "std_empty", [*ev, "--weights", f["run"], "--data", "digits", "--std", ""], key="std")
    add("eval", "crop_pct_zero", [*ev, "--weights", f["run"], "--data", "digits", "--crop-pct", "0"], key="crop")
    add("eval", "crop_pct_nan", [*ev, "--weights", f["run"], "--data", "digits", "--crop-pct", "nan"], key="crop")
    add("eval", "crop_pct_neg", [*ev, "--weights", f["run"], "--data", "digits", "--crop-pct", "-1"], key="crop")
    add("eval", "out_file", [*ev, "--weights", f["run"], "--data", "digits", "--out", f["spec"]], key="mine.arch")
    add("eval", "out_readonly", [*ev, "--weights", f["run"], "--data", "digits", "--out", f["ro"] / "e"], key="e")
    add("eval", "wrong_spec", ["eval", "resnet50", "--weights", f["run"], "--data", "digits"])
    add("eval", "wrong_classes", [*ev, "--set", "classes=3", "--weights", f["run"], "--data", "digits"], key="class")
    add("eval", "data_rgb_folder", [*ev, "--weights", f["run"], "--data", f["good"]], reject=False, timeout=60)
    add("eval", "data_shards_trunc", [*ev, "--weights", f["run"], "--data", f["shards_trunc"], "--split", "train"],
        key=str(f["shard_names"]))
    add("eval", "device_bad", [*ev, "--weights", f["run"], "--data", "digits", "--device", "gpu"], key="gpu")
    add("eval", "good", [*ev, "--weights", f["run"], "--data", "digits", "--json"], reject=False)
    # data pack / data check
    pk = lambda src, n, *extra: ["data", "pack", src, "--to", f["good"].parent / "packs" / n, "-q", *extra]  # noqa: E731
    add("data pack", "src_missing", pk(missing.parent, "a"), key="no")
    add("data pack", "src_file", pk(f["spec"], "b"), key="mine.arch")
    add("data pack", "src_fifo", pk(f["fifo"], "c"), key="pipe.arch", timeout=20)
    add("data pack", "zero_jpeg", pk(f["zero_jpeg"], "d"), key="zero.jpg")
    add("data pack", "zero_jpeg_skip", pk(f["zero_jpeg"], "e", "--skip-bad-images"), reject=False)
    add("data pack", "trunc_jpeg", pk(f["trunc_jpeg"], "f"), key="cut.jpg")
    add("data pack", "symloop", pk(f["symloop"], "g"), key="loop")
    add("data pack", "fifo_img", pk(f["fifo_img"], "h"), key="pipe.png", timeout=30)
    add("data pack", "train_is_val", pk(f["train_is_val"], "i"), key="val")
    add("data pack", "empty_split", pk(f["empty_split"], "j"))
    add("data pack", "shard_size_zero", pk(f["good"], "k", "--shard-size", "0"), key="shard")
    add("data pack", "shard_size_neg", pk(f["good"], "l", "--shard-size", "-5"), key="shard")
    # More images a shard than there are images: one shard, as asked.
    add("data pack", "shard_size_huge", pk(f["good"], "m", "--shard-size", "9" * 30), reject=False)
    add("data pack", "seed_neg", pk(f["good"], "n", "--seed", "-1"))
    add("data pack", "to_nonempty", ["data", "pack", f["good"], "--to", f["odd_dir"], "-q"], key="a [b] c")
    add("data pack", "to_readonly", ["data", "pack", f["good"], "--to", f["ro"] / "p", "-q"], key="p")
    add("data pack", "to_file", ["data", "pack", f["good"], "--to", f["spec"], "-q"], key="mine.arch")
    add("data pack", "to_empty", ["data", "pack", f["good"], "--to", "", "-q"])
    add("data pack", "to_inside_src", ["data", "pack", f["good"], "--to", f["good"] / "train" / "packed", "-q"])
    add("data pack", "bomb", pk(f["bomb"], "o"), reject=False, timeout=60)
    add("data pack", "png16", pk(f["png16"], "p"), reject=False)
    add("data check", "missing", ["data", "check", missing.parent], key="no")
    add("data check", "file", ["data", "check", f["spec"]], key="mine.arch")
    add("data check", "fifo", ["data", "check", f["fifo"]], key="pipe.arch", timeout=20)
    add("data check", "empty", ["data", "check", ""])
    add("data check", "symloop", ["data", "check", f["symloop"]], key="loop")
    add("data check", "fifo_img", ["data", "check", f["fifo_img"]], key="pipe.png", timeout=20)
    add("data check", "train_is_val", ["data", "check", f["train_is_val"]], key="val")
    add("data check", "cls_link_val", ["data", "check", f["cls_link"]], key="val")
    add("data check", "shards_trunc", ["data", "check", f["shards_trunc"]], key=str(f["shard_names"]))
    add("data check", "shards_missing", ["data", "check", f["shards_missing"]])
    add("data check", "shards_brace_gap", ["data", "check", str(f["shards_missing"]) + "/train-{000000..000002}.tar"])
    add("data check", "shards_brace_huge", ["data", "check", str(f["shards"]) + "/train-{0..999999999999}.tar"], timeout=20)
    add("data check", "shards_brace_bad", ["data", "check", str(f["shards"]) + "/train-{9..1}.tar"])
    add("data check", "shards_nonimage_verify", ["data", "check", f["shards_nonimage"], "--verify"], key="sha")
    add("data check", "shards_noindex", ["data", "check", f["shards_noindex"]], key="index.json")
    add("data check", "good_shards_verify", ["data", "check", f["shards"], "--verify"], reject=False)
    # space / sample / sweep / lsp
    sp = "convnext_space"
    for n, (v, key) in spec_args.items():
        add("space", f"spec_{n}", ["space", v, "-n", "4"], key=key, timeout=20)
    add("space", "not_a_space", ["space", "convnext_t", "-n", "4"], reject=False)
    add("space", "n_zero", ["space", sp, "-n", "0"], key="-n")
    add("space", "n_neg", ["space", sp, "-n", "-3"], key="-n")
    add("space", "n_huge", ["space", sp, "-n", "9" * 30])
    add("space", "seed_neg", ["space", sp, "-n", "4", "--seed", "-1"], reject=False)
    add("space", "set_nan", ["space", sp, "-n", "4", "--set", "classes=nan"], key="classes")
    smp = lambda n, *extra: ["sample", sp, "-o", f["good"].parent / "samples" / n, "-n", "2", *extra]  # noqa: E731
    add("sample", "spec_missing", ["sample", missing, "-o", f["good"].parent / "samples" / "m"], key="such")
    add("sample", "spec_fifo", ["sample", f["fifo"], "-o", f["good"].parent / "samples" / "f"], key="pipe.arch", timeout=20)
    add("sample", "out_file", ["sample", sp, "-o", f["spec"], "-n", "2"], key="mine.arch")
    add("sample", "out_ro", ["sample", sp, "-o", f["ro"] / "smp", "-n", "2"], key="smp")
    add("sample", "out_empty", ["sample", sp, "-o", "", "-n", "2"])
    add("sample", "n_zero", smp("a", "-n", "0"), key="-n")
    add("sample", "n_neg", smp("b", "-n", "-1"), key="-n")
    add("sample", "macs_garbage", smp("c", "--macs", "lots"), key="lots")
    add("sample", "macs_reversed", smp("d", "--macs", "5G:1G"), key="5G")
    add("sample", "macs_nan", smp("e", "--macs", "nan:nan"), key="nan")
    add("sample", "macs_impossible", smp("f", "--macs", "1:2"), timeout=60)
    add("sample", "params_neg", smp("g", "--params", "-5M:-1M"), key="-5M")
    add("sample", "params_empty", smp("h", "--params", ":"), reject=False)
    sw = lambda n, *extra: ["sweep", "run", sp, "--set", "input=1x32x32", "-o", f["good"].parent / "sweeps" / n, *extra]  # noqa: E731
    add("sweep", "spec_missing", ["sweep", "run", missing], key="such")
    add("sweep", "spec_fifo", ["sweep", "run", f["fifo"]], key="pipe.arch", timeout=20)
    add("sweep", "trials_zero", sw("a", "--trials", "0"), key="trials")
    add("sweep", "trials_neg", sw("b", "--trials", "-2"), key="trials")
    add("sweep", "epochs_zero", sw("c", "--epochs", "0", "--trials", "1"), key="epoch")
    add("sweep", "sampler_bad", sw("d", "--sampler", "grid"), key="grid")
    add("sweep", "storage_bad", sw("e", "--storage", "nosuch://x"), key="nosuch")
    add("sweep", "storage_file_garbage", sw("f", "--storage", "sqlite:///" + str(f["spec"])), key="mine.arch")
    add("sweep", "heartbeat_zero", sw("g", "--heartbeat", "0"), key="heartbeat")
    add("sweep", "macs_garbage", sw("h", "--macs", "x:y"), key="x:y")
    add("sweep", "data_missing", sw("i", "--data", missing.parent, "--trials", "1"), key="no")
    add("sweep", "out_file", ["sweep", "run", sp, "-o", f["spec"]], key="mine.arch")
    add("sweep", "not_a_space", ["sweep", "run", "resnet18", "-o",
        f["good"].parent / "sweeps" / "k", "--trials", "1"], key="resnet18", timeout=90)
    add("sweep", "report_missing", ["sweep", "report", missing, "-o", f["good"].parent / "sweeps" / "r1"], key="such")
    add("sweep", "report_file", ["sweep", "report", f["spec"], "-o", f["good"].parent / "sweeps" / "r2"], key="mine.arch")
    add("sweep", "report_out_file", ["sweep", "report", f["run"], "-o", f["spec"]], key="mine.arch")
    add("lsp", "garbage_stdin", ["lsp"], stdin=b"Content-Length: 5\r\n\r\n{{{{{", reject=False, timeout=20)
    add("lsp", "huge_length", ["lsp"], stdin=b"Content-Length: 99999999999999\r\n\r\n{}", reject=False, timeout=20)
    add("lsp", "binary_stdin", ["lsp"], stdin=bytes(range(256)) * 4, reject=False, timeout=20)
    add("lsp", "tcp_flag", ["lsp", "--tcp"])
    return c


API_CASES: dict[str, str] = {
    "build_int": "archdsl.build(42)",
    "build_none": "archdsl.build(None)",
    "build_state_dict_path": "archdsl.build('convnext_t', state_dict='w.safetensors', **T)",
    "build_state_dict_foreign": "archdsl.build('convnext_t', state_dict={'x': 1}, **T)",
    "build_compile_backend": "archdsl.build('convnext_t', compile={'backend': 'nosuch'}, **T)",
    "build_device_bad": "archdsl.build('convnext_t', device='tpu', **T)",
    "build_mode_bad": "archdsl.build('convnext_t', mode='sideways', **T)",
    "build_override_type": "archdsl.build('convnext_t', classes=[1, 2])",
    "analyze_bytes": "archdsl.analyze(b'network x')",
    "analyze_taps_int": "archdsl.analyze('convnext_t', taps=5, **T)",
    "analyze_out_indices_str": "archdsl.analyze('convnext_t', features=True, out_indices='abc', **T)",
    "check_list": "archdsl.check(['convnext_t'])",
    "check_fifo": "archdsl.check(FIFO)",
    "load_int": "archdsl.load(3)",
    "load_long": "archdsl.load('a' * 5000)",
    "load_train_epochs_bool": "archdsl.load('convnext_t', train_epochs=True)",
    "loads_bytes": "archdsl.loads(b'network x\\n')",
    "loads_none": "archdsl.loads(None)",
    "diff_from_json_empty": "archdsl.Diff.from_json('{}')",
    "patch_from_json_empty": "archdsl.Patch.from_json('{}')",
    "diff_ints": "archdsl.diff(1, 2)",
    "apply_wrong": "archdsl.apply(None, 'step00')",
    "change_int": "archdsl.change(7)",
    "fmt_int": "archdsl.fmt(7)",
    "load_checkpoint_long": "archdsl.load_checkpoint('a' * 5000)",
    "load_checkpoint_none": "archdsl.load_checkpoint(None)",
    "load_checkpoint_file": "archdsl.load_checkpoint(SPEC)",
    "load_weights_none": "archdsl.load_weights(archdsl.build('convnext_t', **T), None)",
    "load_weights_str": "archdsl.load_weights(archdsl.build('convnext_t', **T), 'w.safetensors')",
    "load_weights_layout": "archdsl.load_weights(archdsl.build('convnext_t', **T), {}, layout='keras')",
    "load_weights_not_module": "archdsl.load_weights('model', {})",
    "transfer_missing": "archdsl.transfer('convnext_t', 'convnext_t', 'missing.safetensors', quiet=True, **T)",
    "transfer_none": "archdsl.transfer('convnext_t', 'convnext_t', None, quiet=True, **T)",
    "transfer_into_bad": "archdsl.transfer('convnext_t', 'convnext_t', {}, into='x', quiet=True, **T)",
    "transfer_dir": "archdsl.transfer('convnext_t', 'convnext_t', '.', quiet=True, **T)",
    "train_seed_huge": "archdsl.train('convnext_t', epochs=1, seed=2**70, out=OUT('s'), quiet=True, **T)",
    "train_data_int": "archdsl.train('convnext_t', data=5, epochs=1, out=OUT('d'), quiet=True, **T)",
    "train_epochs_str": "archdsl.train('convnext_t', epochs='two', out=OUT('e'), quiet=True, **T)",
    "train_out_int": "archdsl.train('convnext_t', epochs=1, out=5, quiet=True, **T)",
    "train_compile_bad": "archdsl.train('convnext_t', epochs=1, compile={'backend': 'nosuch'}, out=OUT('c'), quiet=True, **T)",
    "evaluate_weights_none": "evaluate('convnext_t', None, data='digits', **T)",
    "evaluate_data_int": "evaluate('convnext_t', RUN, data=3, **T)",
    "evaluate_batch_str": "evaluate('convnext_t', RUN, data='digits', batch='x', **T1)",
    "evaluate_mean_str": "evaluate('convnext_t', RUN, data='digits', mean='0.5', **T1)",
    "pack_shard_zero": "pack(GOOD, OUT('p0'), shard_size=0)",
    "pack_shard_str": "pack(GOOD, OUT('p1'), shard_size='5')",
    "pack_root_none": "pack(None, OUT('p2'))",
    "pack_root_int": "pack(7, OUT('p3'))",
    "find_shards_none": "find_shards(None)",
    "find_shards_missing": "find_shards('nowhere/train-{0..3}.tar')",
}

API_RUNNER = r'''
import json, os, signal, sys, traceback
sys.setrecursionlimit(3000)
import archdsl
from archdsl.lang.errors import ArchError
from archdsl.evaluate import evaluate
from archdsl.data.pack import pack
from archdsl.data.shards import find_shards
cfg = json.loads(sys.argv[1])
T = dict(widths="8,16,32,64", depths="1,1,1,1", input="3x32x32")
T1 = dict(widths="8,16,32,64", depths="1,1,1,1", input="1x32x32")
RUN, GOOD, SPEC, FIFO = cfg["run"], cfg["good"], cfg["spec"], cfg["fifo"]
OUT = lambda n: os.path.join(cfg["tmp"], n)
os.chdir(cfg["tmp"])
class Hang(Exception): pass
def alarm(*_): raise Hang()
signal.signal(signal.SIGALRM, alarm)
results = {}
for name, code in cfg["cases"].items():
    signal.alarm(int(cfg["timeout"]))
    try:
        eval(code)
        results[name] = ["accepted", ""]
    except ArchError as e:
        results[name] = ["error", f"error[{getattr(e, 'code', None)}]: {str(e).splitlines()[0] if str(e) else ''} | hint: {getattr(e, 'hint', '')}"]
    except Hang:
        results[name] = ["hang", ""]
    except BaseException as e:
        results[name] = ["traceback", type(e).__name__ + ": " + str(e)[:300] + " @ " + traceback.extract_tb(e.__traceback__)[-1].filename.split("archdsl/")[-1] + ":" + str(traceback.extract_tb(e.__traceback__)[-1].lineno)]
    finally:
        signal.alarm(0)
print("@@RESULTS@@" + json.dumps(results))
'''

# Cases whose input is legal (the API should accept it).
API_LEGAL: set[str] = set()


# ----------------------------------------------------------------------------- running


PRECIOUS: dict[str, str] = {}


def _rehash(paths) -> dict[str, str]:
    snap = {}
    for p in paths:
        try:
            if stat.S_ISREG(os.lstat(p).st_mode):
                with open(p, "rb") as fh:
                    snap[p] = hashlib.sha256(fh.read()).hexdigest()
            else:
                snap[p] = "not a regular file"
        except OSError:
            snap[p] = "gone"
    return snap


def _snapshot(root: Path) -> dict[str, str]:
    """Hash of every regular file under root (the precious files a failed command must not touch)."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in filenames:
            p = os.path.join(dirpath, n)
            try:
                st = os.lstat(p)
                if stat.S_ISREG(st.st_mode):
                    with open(p, "rb") as fh:
                        snap[p] = hashlib.sha256(fh.read()).hexdigest()
            except OSError:
                pass
    return snap


def classify(case: Case, rc: int | None, out: str, changed: list[str]) -> tuple[str, str]:
    if rc is None:
        return "bug", "hang (timeout)"
    if "Traceback (most recent call last)" in out:
        tail = [l for l in out.splitlines() if l.strip()][-1:]
        return "bug", "traceback: " + (tail[0][:200] if tail else "")
    if rc < 0 or rc not in (0, 1, 2):
        return "bug", f"exit {rc}"
    if rc != 0 and changed:
        return "bug", "failed but changed " + ", ".join(changed[:3])
    if rc == 0:
        return ("bug", "exit 0 on nonsense: " + out.strip()[-200:]) if case.reject else ("clean", "accepted")
    first = next((l for l in out.splitlines() if re.search(r"error\[E\d{3}\]|Error|Usage|Invalid|Missing|No such", l)), "")
    if rc == 1 and not re.search(r"error\[E\d{3}\]", out):
        return "weak", "exit 1 without error[Ennn]: " + out.strip()[-200:]
    if rc == 2 and not re.search(r"Usage|Error|error\[|^error: ", out, re.M):
        return "weak", "exit 2 without a usage line: " + out.strip()[-200:]
    if re.search(r"site-packages|Errno \d|\bself\.|object has no attribute", out):
        return "weak", "leaks internals: " + first[:200]
    if case.key and case.key.lower() not in out.lower().replace("\n", " ").replace("│", ""):
        # rich wraps long lines: compare with the box characters and line breaks removed.
        flat = re.sub(r"\s+", "", out.replace("│", "")).lower()
        if re.sub(r"\s+", "", case.key.lower()) not in flat:
            return "weak", f"does not name {case.key!r}: " + out.strip()[:200].replace("\n", " ")
    return "clean", first[:160]


def run_cli(case: Case, precious: Path, default_timeout: float) -> Case:
    env = _env()
    before = PRECIOUS
    t0 = time.time()
    try:
        p = subprocess.run([sys.executable, "-m", "archdsl", *case.argv], env=env, input=case.stdin or b"",
                           capture_output=True, timeout=case.timeout or default_timeout, cwd=precious.parent)
        rc, out = p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        rc, out = None, ((e.stdout or b"") + (e.stderr or b"")).decode("utf-8", "replace")
    case.seconds = time.time() - t0
    after = _rehash(before)
    changed = [p for p, h in before.items() if after.get(p) != h]
    case.outcome, case.detail = classify(case, rc, out, changed)
    return case


def run_api(cases: list[Case], f: dict, tmp: Path, timeout: float) -> None:
    cfg = {"run": str(f["run"]), "good": str(f["good"]), "spec": str(f["spec"]), "fifo": str(f["fifo"]),
           "tmp": str(tmp), "timeout": timeout, "cases": {c.name: c.api for c in cases}}
    t0 = time.time()
    try:
        p = subprocess.run([sys.executable, "-c", API_RUNNER, json.dumps(cfg)], env=_env(), capture_output=True,
                           timeout=timeout * len(cases) + 60)
        text = p.stdout.decode("utf-8", "replace")
        results = json.loads(text.split("@@RESULTS@@", 1)[1]) if "@@RESULTS@@" in text else {}
        if not results:
            print(p.stderr.decode()[-2000:], file=sys.stderr)
    except subprocess.TimeoutExpired:
        results = {}
    per = (time.time() - t0) / max(1, len(cases))
    for c in cases:
        kind, detail = results.get(c.name, ["hang", "the API batch died"])
        c.seconds = per
        if kind == "error":
            c.outcome, c.detail = ("clean", detail) if re.search(r"error\[E\d{3}\]", detail) else ("weak", "no code: " + detail)
        elif kind == "accepted":
            c.outcome, c.detail = ("clean", "accepted") if c.name in API_LEGAL else ("bug", "accepted nonsense")
        else:
            c.outcome, c.detail = "bug", f"{kind}: {detail}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=45.0, help="seconds per CLI case unless the case says less")
    ap.add_argument("--only", default=None, help="run only this command's cases (e.g. 'eval', 'api')")
    ap.add_argument("--show", choices=["bugs", "weak", "all", "none"], default="bugs")
    ap.add_argument("--json", default=None, help="also write every case's outcome to this JSON file")
    args = ap.parse_args(argv)

    t0 = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="archdsl-hostile-"))
    try:
        fixtures = make_fixtures(tmp / "fx")
        os.chmod(fixtures["readonly"], 0o555)
        help_text = subprocess.run([sys.executable, "-m", "archdsl", "--help"], env=_env(), capture_output=True,
                                   text=True).stdout
        commands = set(re.findall(r"│ (\S+)\s", help_text))
        cases = [c for c in cli_cases(fixtures) if c.group.split()[0] in commands]
        api = [Case("api", n, api=code, reject=n not in API_LEGAL) for n, code in API_CASES.items()]
        if args.only:
            cases = [c for c in cases if c.group == args.only]
            api = api if args.only == "api" else []
        print(f"fixtures ready in {time.time() - t0:.0f} s; {len(cases)} CLI cases, {len(api)} API cases, "
              f"{args.jobs} at a time", file=sys.stderr)
        precious = fixtures["good"].parent
        PRECIOUS.update(_snapshot(precious))  # the fixtures as made: no case may change them
        with ThreadPoolExecutor(args.jobs) as pool:
            api_done = pool.submit(run_api, api, fixtures, tmp / "api", 30.0) if api else None
            (tmp / "api").mkdir(exist_ok=True)
            list(pool.map(lambda c: run_cli(c, precious, args.timeout), cases))
            if api_done:
                api_done.result()
        everything = cases + api
    finally:
        for dirpath, dirnames, _ in os.walk(tmp):
            for d in dirnames:
                try:
                    os.chmod(os.path.join(dirpath, d), 0o755)
                except OSError:
                    pass
        shutil.rmtree(tmp, ignore_errors=True)

    groups: dict[str, list[Case]] = {}
    for c in everything:
        groups.setdefault(c.group, []).append(c)
    print(f"\n{'command':<15}{'cases':>7}{'clean':>7}{'weak':>6}{'bugs':>6}")
    tot = [0, 0, 0, 0]
    for g, cs in groups.items():
        n = [len(cs), sum(c.outcome == "clean" for c in cs), sum(c.outcome == "weak" for c in cs),
             sum(c.outcome == "bug" for c in cs)]
        tot = [a + b for a, b in zip(tot, n)]
        print(f"{g:<15}{n[0]:>7}{n[1]:>7}{n[2]:>6}{n[3]:>6}")
    print(f"{'total':<15}{tot[0]:>7}{tot[1]:>7}{tot[2]:>6}{tot[3]:>6}")
    print(f"({time.time() - t0:.0f} s wall, {args.jobs} jobs)")
    show = {"bugs": {"bug"}, "weak": {"bug", "weak"}, "all": {"bug", "weak", "clean"}, "none": set()}[args.show]
    for c in everything:
        if c.outcome in show:
            print(f"  {c.outcome:5} {c.group}/{c.name}: {c.detail}")
    if args.json:
        Path(args.json).write_text(json.dumps([c.__dict__ for c in everything], indent=1, default=str))
    return 1 if tot[3] else 0


if __name__ == "__main__":
    sys.exit(main())
