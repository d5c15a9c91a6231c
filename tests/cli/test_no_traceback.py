"""No input a user can type produces a Python traceback: the CLI exits 1 with a rendered
error (2 for usage errors), and the API raises only `ArchError`.

Nasty files and `--set` values go through `archdsl check` and `archdsl compile` in-process
(exceptions are not caught by the runner, so a crash fails the test with its traceback);
a seeded mutation fuzz over convnext_t.arch goes through `archdsl.loads` and `archdsl.check`.
"""
from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import archdsl
from archdsl.cli import app

REPO = Path(__file__).resolve().parents[2]
CONVNEXT_T = (REPO / "specs" / "convnext_t.arch").read_text()
TINY = "network tiny\ninput 3x32x32\nclasses 10\nblock b {\n    residual {\n        conv3, bn, relu\n    }\n}\n" \
       "stem conv3 8\nstages {\n    8 b x1\n}\nhead gap, linear\n"


def nested_residuals(depth: int) -> str:
    return (f"network deep\ninput 3x32x32\nblock b {{\n" + "residual {\n" * depth + "relu\n" + "}\n" * depth
            + "}\nstages {\n    8 b x1\n}\n")


def replace_block(body: str) -> str:
    start, end = CONVNEXT_T.index("block convnext"), CONVNEXT_T.index("stem")
    return CONVNEXT_T[:start] + f"block convnext {{\n{body}\n}}\n\n" + CONVNEXT_T[end:]


NASTY: dict[str, str | bytes] = {
    "empty": "",
    "blank_lines": "\n\n   \n\t\n",
    "only_comments": "# just a comment\n# and another\n",
    "binary_garbage": bytes(random.Random(0).randrange(256) for _ in range(512)),
    "latin1": "network caf\xe9\n".encode("latin-1"),
    "utf8_bom_then_mistake": "\ufeffnetwork bom extends convnext_t\nclasses ten\n".encode(),
    "nul_bytes": "network a\x00b\n",
    "unicode_name": "network café extends convnext_t\n",
    "unicode_digits": "network n extends convnext_t\nclasses １０\n",
    "emoji_op": "network n extends convnext_t\nhead gap, 🔥, linear\n",
    "form_feed_and_line_separator": CONVNEXT_T.replace("ln\n", "ln\x0c\u2028\n", 1),
    "cr_only_line_ends": CONVNEXT_T.replace("\n", "\r") + "garbage {",
    "huge_classes": "network n extends convnext_t\nclasses 99999999999999999999\n",
    "huge_input": "network n extends convnext_t\ninput 3x99999999999999999999x99999999999999999999\n",
    "huge_width": "network n extends convnext_t\nstages {\n    99999999999999999999 convnext x3\n}\n",
    "huge_depth": "network n extends convnext_t\nstages {\n    96 convnext x99999999999999999999\n}\n",
    "huge_kernel": replace_block("    residual {\n        dwconv99999999999999999999\n    }"),
    "huge_groups": replace_block("    residual {\n        conv3 g99999999999999999999\n    }"),
    "input_0x0x0": "network n extends convnext_t\ninput 0x0x0\n",
    "input_4d": "network n extends convnext_t\ninput 3x224x224x3\n",
    "input_word": "network n extends convnext_t\ninput big\n",
    "depth_x0": "network n extends convnext_t\nstages {\n    96 convnext x0\n}\n",
    "depth_x": "network n extends convnext_t\nstages {\n    96 convnext x\n}\n",
    "depth_negative": "network n extends convnext_t\nstages {\n    96 convnext x-3\n}\n",
    "classes_negative": "network n extends convnext_t\nclasses -5\n",
    "classes_float": "network n extends convnext_t\nclasses 1e3\n",
    "width_negative": replace_block("    residual {\n        pwconv -4x\n    }"),
    "stride_s0": "network n extends convnext_t\nstem conv4 s0, ln\n",
    "stage_s0": "network n extends convnext_t\nstages {\n    96 convnext x3 s0\n}\n",
    "kernel_0": replace_block("    residual {\n        dwconv0\n    }"),
    "groups_0": replace_block("    residual {\n        conv3 g0\n    }"),
    "eps_garbage": replace_block("    residual {\n        ln eps=abc\n    }"),
    "dropout_nan": "network n extends convnext_t\nhead gap, dropout nan, linear\n",
    "droppath_inf": replace_block("    residual {\n        droppath inf\n    }"),
    "layerscale_missing": replace_block("    residual {\n        layerscale\n    }"),
    "empty_residual": replace_block("    residual {\n    }"),
    "empty_residual_with_shortcut": replace_block("    residual {\n    } shortcut conv1, bn"),
    "deeply_nested_residuals": nested_residuals(200),
    "very_deeply_nested_residuals": nested_residuals(5000),
    "unbalanced_closing_braces": "network n extends convnext_t\n}}}}\n",
    "unclosed_train": CONVNEXT_T.rstrip().rstrip("}"),
    "extends_missing": "network n extends no_such_spec_anywhere\n",
    "extends_itself": "network selfish extends selfish\n",
    "extends_nothing": "network n extends\n",
    "header_only": "network n\n",
    "two_headers": "network a\nnetwork b\n",
    "stages_empty": "network n extends convnext_t\nstages {\n}\n",
    "train_garbage": "network n extends convnext_t\ntrain {\n    epochs many\n    optimizer\n    schedule step x y gamma\n}\n",
    "train_nan_lr": "network n extends convnext_t\ntrain {\n    optimizer adamw lr nan betas 1\n}\n",
    "init_garbage": "network n extends convnext_t\ninit kaiming sideways 7\n",
    "very_long_line": "network n extends convnext_t\nhead " + ", ".join(["relu"] * 5000) + ", gap, nope\n",
    "head_before_gap": "network n extends convnext_t\nhead linear, gap\n",
    "only_punctuation": "{ } , = + - .\n",
}


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)


def cli(*args: str):
    """Run the CLI in-process; a non-ArchError escaping it fails the test with its traceback."""
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def assert_clean_failure(result, code: int = 1) -> None:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.exit_code == code, output
    if code == 1:
        assert re.search(r"error\[E\d{3}\]: ", result.stderr), result.stderr


@pytest.fixture(params=sorted(NASTY), ids=sorted(NASTY))
def nasty_file(request, tmp_path) -> Path:
    path = tmp_path / f"{request.param}.arch"
    content = NASTY[request.param]
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize("command", ["check", "compile"])
def test_nasty_spec_files_exit_1_without_traceback(nasty_file, command):
    assert_clean_failure(cli(command, str(nasty_file)))


@pytest.mark.parametrize("command", ["check", "compile"])
@pytest.mark.parametrize("spec", [
    "no_such_spec",            # an unknown shipped name
    "convnext_tt",             # a near miss
    "missing/file.arch",       # a path that does not exist
    "tests",                   # a directory, by name
    "tests/",                  # a directory, by path
    "",                        # nothing at all
])
def test_bad_spec_arguments_exit_1(command, spec):
    assert_clean_failure(cli(command, spec))


def test_a_directory_named_like_a_spec(tmp_path):
    (tmp_path / "looks_like.arch").mkdir()
    assert_clean_failure(cli("check", str(tmp_path / "looks_like.arch")))


def test_an_unreadable_file(tmp_path):
    path = tmp_path / "secret.arch"
    path.write_text(CONVNEXT_T)
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as a user who can read any file")
        assert_clean_failure(cli("check", str(path)))
    finally:
        path.chmod(0o644)


def test_windows_files_are_fine(tmp_path):
    """A byte-order mark and CRLF line ends, as some editors write them, are not mistakes."""
    path = tmp_path / "windows.arch"
    path.write_bytes(b"\xef\xbb\xbf" + "network windows extends convnext_t\nclasses 10\n".replace("\n", "\r\n").encode())
    result = cli("check", str(path))
    assert result.exit_code == 0, result.stderr
    path.write_bytes(b"\xef\xbb\xbf" + b"network windows extends convnext_t\r\nclasses ten\r\n")
    result = cli("check", str(path))
    assert result.exit_code == 1 and ":2:9: error[E206]" in result.stderr


def test_a_parent_that_is_not_utf8(tmp_path):
    (tmp_path / "parent.arch").write_bytes(b"network parent\ninput 3x\xff\xfex32\n")
    (tmp_path / "child.arch").write_text("network child extends parent\n")
    assert_clean_failure(cli("check", str(tmp_path / "child.arch")))


BAD_SETS = [
    "=", "==", "classes", "classes=", "=10", " = ", "classes=ten", "classes=0", "classes=-1",
    "classes=99999999999999999999", "input=0x0x0", "input=3x64", "input=axbxc", "input=3x1x1",
    "widths=a,b", "widths=1,2", "widths=,,,", "widths=0,0,0,0", "depths=1,2,3,4,5",
    "depths=99999999,1,1,1", "depths=1.5,1,1,1", "stages.9.width=8", "stages.0.stride=0",
    "stages.0.depth=x", "stages.-1.width=8", "convnext.dwconv.kernel=0", "convnext.dwconv.kernel=8",
    "convnext.nope.kernel=3", "nope.dwconv.kernel=3", "convnext.dwconv.kernel=k",
    "train.epochs=many", "train.nope=1", "train.lr=-1", "train.betas=0.9", "train.betas=a,b",
    "train.optimizer=adam", "train.droppath=2", "train.=1", "unknown_key=1", "name=",
    "stages.0.width=99999999999999999999",
]


@pytest.mark.parametrize("command", ["check", "compile"])
@pytest.mark.parametrize("item", BAD_SETS)
def test_bad_set_values_exit_1(command, item):
    assert_clean_failure(cli(command, "convnext_t", "--set", item))


@pytest.mark.parametrize("args", [
    [],                                         # no command: help, exit 2
    ["check"],                                  # no SPEC
    ["compile"],
    ["nope", "convnext_t"],                     # unknown command
    ["check", "convnext_t", "--bogus"],         # unknown option
    ["check", "convnext_t", "--set"],           # option without its value
    ["compile", "convnext_t", "--emit", "pdf"],  # a value the option does not take
    ["check", "a.arch", "b.arch"],              # too many arguments
    ["train", "resnet18", "--set", "epochs=3"],  # a run option, not a spec value
    ["train", "resnet18", "--set", "seed=3"],
    ["train-roadmap", "--set", "epochs=3"],
    ["train", "resnet18", "--seed", "99999999999999999999"],
    ["train", "resnet18", "--seed", "-1"],
])
def test_usage_errors_exit_2(args):
    assert_clean_failure(cli(*args), code=2)


def test_the_installed_command_never_prints_a_traceback(tmp_path):
    """The real entry point in a fresh process, for what CliRunner might hide (streams, encodings)."""
    garbage = tmp_path / "garbage.arch"
    garbage.write_bytes(NASTY["binary_garbage"])  # type: ignore[arg-type]
    for args in (["check", str(garbage)], ["check", "convnext_t", "--set", "="],
                 ["compile", "tests/lang/diagnostics/dwconv8.arch"]):
        proc = subprocess.run([sys.executable, "-m", "archdsl", *args], cwd=REPO, capture_output=True,
                              text=True, timeout=60, env={**os.environ, "COLUMNS": "40"})
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr
        assert "error[E" in proc.stderr
    # not re-wrapped at a narrow terminal: one diagnostic line stays one line
    assert "did you mean `dwconv7` or `dwconv9`?" in proc.stderr
    if Path("/dev/full").exists():  # standard output that cannot be written: an error, not a traceback
        with open("/dev/full", "w") as full:
            proc = subprocess.run([sys.executable, "-m", "archdsl", "check", "resnet18"], cwd=REPO, stdout=full,
                                  stderr=subprocess.PIPE, text=True, timeout=60)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert "error: cannot write the output: No space left on device" in proc.stderr


# ---- fuzz: random edits of a real spec must give a Network or an ArchError, nothing else ----

_TOKEN = re.compile(r"\S+|\n")
_INSERTS = list("{}{},,#x0123456789.-=\n \t") + ["residual {", "}", "x3", "s2", "stride", "4x", "network"]


def mutate(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["delete", "duplicate", "swap", "insert", "delete_token", "duplicate_token",
                           "swap_tokens", "replace_token"])
        if kind in ("delete", "duplicate", "swap", "insert"):
            i = rng.randrange(len(text) - 1)
            if kind == "delete":
                text = text[:i] + text[i + 1:]
            elif kind == "duplicate":
                text = text[:i] + text[i] + text[i:]
            elif kind == "swap":
                text = text[:i] + text[i + 1] + text[i] + text[i + 2:]
            else:
                text = text[:i] + rng.choice(_INSERTS) + text[i:]
            continue
        tokens = [m for m in _TOKEN.finditer(text)]
        a, b = rng.choice(tokens), rng.choice(tokens)
        if kind == "delete_token":
            text = text[:a.start()] + text[a.end():]
        elif kind == "duplicate_token":
            text = text[:a.end()] + " " + a.group() + text[a.end():]
        elif kind == "replace_token":
            text = text[:a.start()] + b.group() + text[a.end():]
        else:  # swap two tokens
            first, second = sorted((a, b), key=lambda m: m.start())
            if first.end() <= second.start():
                text = (text[:first.start()] + second.group() + text[first.end():second.start()]
                        + first.group() + text[second.end():])
    return text


def test_mutation_fuzz_raises_only_arch_errors():
    rng = random.Random(20260124)
    outcomes = {"ok": 0, "error": 0}
    for i in range(200):
        text = mutate(CONVNEXT_T, rng)
        try:
            archdsl.check(archdsl.loads(text, path=f"<fuzz-{i}>"))
            outcomes["ok"] += 1
        except archdsl.ArchError as e:
            assert e.render().startswith(("<fuzz-", "error[", "specs/", "/")), e.render()
            outcomes["error"] += 1
        except Exception as e:  # noqa: BLE001 - the point of the test
            pytest.fail(f"mutation {i} escaped as {type(e).__name__}: {e}\n--- spec ---\n{text}")
    # the fuzz is not vacuous: it makes both valid and invalid specs
    assert outcomes["ok"] >= 10 and outcomes["error"] >= 50, outcomes


# ---- hostile fuzz: values, structures, names and paths, for a bounded time ----
# ARCHDSL_FUZZ_SECONDS (default 3) sets how long it runs; ARCHDSL_FUZZ_SEED the seed. Every
# input must end in a Network or an ArchError (API), or exit 0/1/2 with no traceback and no raw
# control character (CLI). It prints the figures: inputs tried, clean errors, tracebacks.

HOSTILE_VALUES = ["nan", "-nan", "inf", "-inf", "1e309", "-1", "0", "-0", "0.0", "1e-400", "10,20",
                  "1,2,3,4,5", "99999999999999999999", "2147483647", "4294967297", "", " ", ",", ",,",
                  "[/x]", "[bold]x", "\x1b[31m", "a\x00b", "\u202e", "abc", "0x10", "1_000", "none",
                  "off", "true", "٣", "1e3", "3.5", "-3.5", "1x1x1", "0x0x0", "3x99999x99999",
                  "3x-1x4", "x", "s2", "1,nan", "inf,inf", "0.9,2", "1e-3,2"]


def _hostile_set_items(rng: random.Random) -> dict:
    from archdsl.lang.recipe import FIELDS

    keys = ["name", "classes", "input", "widths", "depths", "stages.0.width", "stages.0.depth",
            "stages.3.stride", "stages.9.width", "convnext.dwconv.kernel", "stem.conv.kernel",
            "nosuch.op.kernel", "unknown"] + [f"train.{f}" for f in FIELDS]
    return {rng.choice(keys): rng.choice(HOSTILE_VALUES) for _ in range(rng.randint(1, 3))}


def _hostile_spec(rng: random.Random) -> str:
    kind = rng.choice(["name", "deep", "wide", "long_line", "stages", "values"])
    if kind == "name":
        name = rng.choice(["[/x]", "[v2]", "a\x1b[2Jb", "n\u202eame", "x" * rng.randint(1, 5000), "é[b]"])
        return f"network {name} extends convnext_atto\nclasses 10\n"
    if kind == "deep":
        return nested_residuals(rng.choice([1, 10, 31, 32, 33, 100, 3000]))
    if kind == "wide":
        stages = "".join(f"    8 b x{rng.choice([1, 10, 10_000, 10**9])}\n" for _ in range(rng.randint(1, 200)))
        return f"network w\ninput 3x32x32\nblock b {{\n    relu\n}}\nstages {{\n{stages}}}\n"
    if kind == "long_line":
        ops = ", ".join(rng.choice(["relu", "bn", "conv3", "ln", "gelu"]) for _ in range(rng.choice([10, 5000, 60_000])))
        return f"network l\ninput 3x32x32\nblock b {{\n    {ops}\n}}\nstages {{\n    8 b x1\n}}\n"
    if kind == "stages":
        return f"network s extends convnext_atto\ninput 3x{rng.choice(['1', '7', '32', '16384', '99999'])}x32\n"
    op = rng.choice(["layerscale", "dropout", "droppath", "ln eps=", "conv3 g", "conv3 s", "pwconv ",
                     f"dwconv{rng.choice([0, 1, 3, 1025, 2147483647])} "])
    value = rng.choice(HOSTILE_VALUES[:20])
    return replace_block(f"    residual {{\n        {op}{value}\n    }}")


def _hostile_path(tmp: Path, rng: random.Random) -> str:
    kind = rng.choice(["dir", "fifo", "dev", "loop", "long", "bytes", "markup", "missing"])
    if kind == "dir":
        (tmp / "d.arch").mkdir(exist_ok=True)
        return str(tmp / "d.arch")
    if kind == "fifo":
        if not (tmp / "f.arch").exists():
            os.mkfifo(tmp / "f.arch")
        return str(tmp / "f.arch")
    if kind == "dev":
        return rng.choice(["/dev/zero", "/dev/null", "/dev/urandom", "/proc/self/mem"])
    if kind == "loop":
        if not (tmp / "loop.arch").is_symlink():
            (tmp / "loop.arch").symlink_to(tmp / "loop.arch")
        return str(tmp / "loop.arch")
    if kind == "long":
        return rng.choice(["a" * 5000 + ".arch", "a/" * 3000 + "x.arch", "x" * 300 + ".arch"])
    if kind == "bytes":
        name = os.fsdecode(b"spec\xff\xfe.arch")
        (tmp / name).write_text("network n extends convnext_atto\n")
        return str(tmp / name)
    if kind == "markup":
        (tmp / "[bold]").mkdir(exist_ok=True)
        (tmp / "[bold]" / "s[v2].arch").write_text("network n extends convnext_atto\n")
        return str(tmp / "[bold]" / "s[v2].arch")
    return str(tmp / "missing" / "x.arch")


def test_hostile_fuzz_values_structures_names_and_paths(tmp_path):
    import time

    seconds = float(os.environ.get("ARCHDSL_FUZZ_SECONDS", "3"))
    rng = random.Random(int(os.environ.get("ARCHDSL_FUZZ_SEED", "12")))
    runner = CliRunner()
    figures = {"inputs": 0, "accepted": 0, "clean_errors": 0, "tracebacks": 0}
    kinds: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or figures["inputs"] < 20:
        kind = rng.choice(["set", "spec", "path", "cli_set", "cli_path"])
        kinds[kind] = kinds.get(kind, 0) + 1
        figures["inputs"] += 1
        try:
            if kind == "set":
                archdsl.check("convnext_atto", **_hostile_set_items(rng))
            elif kind == "spec":
                archdsl.check(archdsl.loads(_hostile_spec(rng)))
            elif kind == "path":
                archdsl.check(_hostile_path(tmp_path, rng))
            else:
                args = ["check", "convnext_atto"]
                if kind == "cli_set":
                    for key, value in _hostile_set_items(rng).items():
                        args += ["--set", f"{key}={value}"]
                else:
                    args = [rng.choice(["check", "compile"]), _hostile_path(tmp_path, rng)]
                r = runner.invoke(app, args)
                if r.exception is not None and not isinstance(r.exception, SystemExit):
                    raise r.exception
                text = r.stdout + r.stderr
                assert r.exit_code in (0, 1, 2) and "Traceback" not in text, (args, text)
                assert not re.search("[\x00-\x08\x0b-\x1f\x7f]", text), (args, text)
                if r.exit_code:
                    raise archdsl.ArchError("cli error")
            figures["accepted"] += 1
        except archdsl.ArchError as e:
            e.render()
            figures["clean_errors"] += 1
        except Exception as e:  # noqa: BLE001 - the point of the test
            figures["tracebacks"] += 1
            pytest.fail(f"{kind} input {figures['inputs']} escaped as {type(e).__name__}: {e}")
    print(f"\nhostile fuzz: {figures} by kind {kinds} in {seconds:g}s")
    assert figures["tracebacks"] == 0 and figures["clean_errors"] > figures["inputs"] // 4
