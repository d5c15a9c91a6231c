"""The printer: `parse(format_spec(x))` equals `x` but for spans, for every shipped spec and for
fuzzed ones; formatting is idempotent; `flatten` resolves to the same network; `archdsl fmt`."""
from __future__ import annotations

import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

import archdsl
from archdsl.cli import app
from archdsl.lang.flatten import flatten
from archdsl.lang.parser import parse
from archdsl.lang.printer import format_spec, same, strip
from archdsl.lang.resolve import resolve

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted(REPO.glob("specs/**/*.arch"))  # every construct a shipped spec uses must print


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_round_trip_shipped(path):
    source = parse(path.read_text(), str(path))
    text = format_spec(source)
    again = parse(text, f"<reprinted {path.stem}>")
    assert same(again, source)
    assert [c.text for c in again.comments] == [c.text for c in source.comments]  # every comment kept
    assert format_spec(again) == text  # idempotent


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_specs_are_formatted(path):
    assert format_spec(parse(path.read_text(), str(path))) == path.read_text()


def _network_key(net) -> dict:
    d = {k: strip(v) for k, v in net if k not in ("name", "path", "chain", "spans", "stages", "init", "values")}
    d["stages"] = [(s.width, s.block, s.depth, s.stride, s.values) for s in net.stages]
    d["init"] = (net.init.scheme, net.init.arg)
    d["blocks"] = {k: strip(b) for k, b in net.blocks.items() if k in {s.block for s in net.stages}}  # what runs
    return d


# a point of each shipped space (the networks its header comment names)
POINTS = {"regnetx_space": dict(w0=24, wa=24.48, wm=2.54, depth=22, gw=16),
          "convnext_space": dict(w=96, d1=3, d2=3, d3=9, d4=3, k=7, e=4, norm="ln", act="gelu"),
          "resnet_space": dict(w=256, b=0.25, g=1, d1=3, d2=4, d3=6, d4=3)}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_flatten_resolves_to_the_same_network(path):
    net = archdsl.load(path, **POINTS.get(path.stem, {}))
    text = format_spec(flatten(net), layout=False)
    assert "extends" not in text
    assert _network_key(resolve(parse(text, "<flat>"))) == _network_key(net)


def test_flatten_applies_overrides():
    net = archdsl.load("convnext_s", train_epochs=5, depths="1,1,2,1", classes=10)
    back = resolve(parse(format_spec(flatten(net), layout=False), "<flat>"))
    assert back.depths == (1, 1, 2, 1) and back.classes == 10 and back.train.epochs == 5
    assert _network_key(back) == _network_key(net)


# ---- fuzzed specs: random but grammatical text, with comments and odd spacing --------------

OPS = ["conv3", "conv1 0.25x", "dwconv7", "pwconv 4x", "bn", "ln", "relu", "gelu", "conv3 stride g2",
       "layerscale 1e-6", "droppath", "maxpool3 s2", "conv4 s4 64", "conv1 tx in", "sigmoid", "gap",
       "wattn7 d32 shift", "mhsa d64", "ln eps=1e-5", "tokens", "clstoken", "posembed", "relu6"]


def _fuzz_spec(rng: random.Random) -> str:
    sp = lambda: " " * rng.randint(1, 3)  # noqa: E731
    comment = lambda: f"{sp()}# note {rng.randint(0, 99)}" if rng.random() < 0.3 else ""  # noqa: E731
    lines = []
    if rng.random() < 0.5:
        lines.append(f"# spec {rng.randint(0, 9)}")
    lines.append(f"network n{rng.randint(0, 99)}" + (" extends convnext_t" if rng.random() < 0.5 else ""))
    sections = []
    if rng.random() < 0.7:
        sections.append([f"input{sp()}3x{rng.choice([32, 64])}x32" + comment()])
    if rng.random() < 0.5:
        sections.append([f"classes{sp()}{rng.randint(1, 100)}"])
    for b in range(rng.randint(0, 2)):
        params = rng.choice(["", "", "(t)", "(t, k)"])
        body = [f"block b{b}{params} {{"]
        for _ in range(rng.randint(1, 3)):
            kind = rng.random()
            ops = lambda n=3: ", ".join(rng.sample(OPS, rng.randint(1, n)))  # noqa: E731
            if kind < 0.3:
                inner = ["    residual {"] + [f"        {ops()}" + comment() for _ in range(rng.randint(1, 3))]
                if rng.random() < 0.3:
                    inner.append(f"        gate {{ {ops()} }}" + comment())
                if rng.random() < 0.3:
                    inner.append(f"        if t {rng.choice(['>', '==', '<=', '!='])} {rng.randint(0, 6)} {{{sp()}{ops()} }}")
                short = rng.choice(["", "", f" shortcut {rng.choice(OPS)}, bn", " shortcut none"])
                body += inner + ["    }" + short + comment()]
            elif kind < 0.45:  # a gate or a guard over several lines, maybe nesting
                head = rng.choice(["gate", "if k > 3"])
                inner = [f"        {ops()}" + comment() for _ in range(rng.randint(1, 2))]
                if rng.random() < 0.3:
                    inner.append(f"        gate {{ {ops(2)} }}")
                body += [f"    {head} {{"] + inner + ["    }" + comment()]
            elif kind < 0.55:
                body.append(f"    gate {{ {ops()} }}" + comment())
            else:
                body.append(f"    {ops(4)}" + comment())
            if rng.random() < 0.2:
                body.append(f"    # inside {rng.randint(0, 9)}")
        sections.append(body + ["}"])
    for key in ("stem", "downsample", "head"):
        if rng.random() < 0.5:
            sections.append([f"{key}{sp()}{', '.join(rng.sample(OPS, rng.randint(1, 3)))}" + comment()])
    if rng.random() < 0.6:
        sections.append(["stages {"] + [f"  {rng.choice([8, 96, 1024])} b0{sp()}x{rng.randint(1, 9)}"
                                        + rng.choice(["", " s2"]) + rng.choice(["", " t=6", " t=1 k=5"])
                                        for _ in range(rng.randint(1, 4))] + ["}"])
    if rng.random() < 0.4:
        sections.append([f"init{sp()}trunc_normal 0.02"])
    if rng.random() < 0.4:
        sections.append(["train {", "  epochs 3", "optimizer adamw lr 4e-3 wd 0.05" + comment(),
                         "  augment rrc, flip,  mixup 0.8", "}"])
    if rng.random() < 0.4:
        sections.append([f"set depths {rng.randint(1, 3)},2,3,1"])
    rng.shuffle(sections)
    for s in sections:
        lines += [""] * rng.randint(0, 2) + s
    return "\n".join(lines) + "\n" * rng.randint(0, 2)


@pytest.mark.parametrize("seed", range(120))
def test_round_trip_fuzzed(seed):
    text = _fuzz_spec(random.Random(seed))
    source = parse(text, f"<fuzz {seed}>")
    printed = format_spec(source)
    again = parse(printed, f"<fuzz {seed} printed>")
    assert same(again, source), printed
    assert sorted(c.text for c in again.comments) == sorted(c.text for c in source.comments), printed
    assert format_spec(again) == printed
    assert format_spec(source, layout=False) == format_spec(again, layout=False)


def test_unknown_node_kind_fails_loudly():
    from archdsl.lang import ast

    class Mystery(ast.Node):
        span: object = None

    spec = parse("network n\nblock b {\n    relu\n}\n")
    block = spec.blocks["b"].model_copy(update={"body": (Mystery(),)})
    with pytest.raises(TypeError, match="no rule for a `Mystery`"):
        format_spec(spec.model_copy(update={"blocks": {"b": block}}))


# ---- the commands ------------------------------------------------------------------------------

def test_fmt_check_and_write(tmp_path):
    f = tmp_path / "[odd] name.arch"
    f.write_text("network a extends convnext_t\nclasses 10 # ten\nstem conv4 s4 , ln\n")
    r = CliRunner().invoke(app, ["fmt", "--check", str(f)], catch_exceptions=False)
    assert r.exit_code == 1
    assert "-stem conv4 s4 , ln" in r.stdout and "+stem   conv4 s4, ln" in r.stdout
    r = CliRunner().invoke(app, ["fmt", "-w", str(f)], catch_exceptions=False)
    assert r.exit_code == 0
    assert f.read_text() == "network a extends convnext_t\nclasses 10  # ten\nstem   conv4 s4, ln\n"
    r = CliRunner().invoke(app, ["fmt", "--check", str(f)], catch_exceptions=False)
    assert r.exit_code == 0 and r.stdout == ""


def test_fmt_check_shipped_specs_pass():
    r = CliRunner().invoke(app, ["fmt", "--check", *map(str, SHIPPED)], catch_exceptions=False)
    assert r.exit_code == 0, r.stdout


def test_flatten_command(tmp_path):
    r = CliRunner().invoke(app, ["flatten", "step09", "--set", "classes=10"], catch_exceptions=False)
    assert r.exit_code == 0
    assert r.stdout.startswith("network step09_gelu\n") and "classes 10" in r.stdout
    assert "block invbottleneck {" in r.stdout and "extends" not in r.stdout
    r = CliRunner().invoke(app, ["flatten", "nope_spec"], catch_exceptions=False)
    assert r.exit_code == 1 and "E201" in r.stderr


def test_flatten_writes_the_convnet_constructs_as_one_writes_them():
    text = format_spec(flatten(archdsl.load("mobilenet_v2")), layout=False)
    for line in ("block inverted(t) {", "        if t > 1 { conv1 tx in, bn, relu6 }", "    } shortcut none",
                 "    24  inverted x2 s2 t=6", "    16  inverted x1 t=1"):
        assert line in text.split("\n"), text
    text = format_spec(flatten(archdsl.load("efficientnet_b0")), layout=False)
    assert "block mbconv(t, k) {" in text and "        gate { gap, conv1 0.25x in, silu, conv1 tx in, sigmoid }" in text


def _readme_quotes():
    """(spec path, quoted lines) for each code block of the README or the docs pages that quotes a
    shipped spec: its first line is `# specs/NAME.arch ...`, or the two lines before it name
    `specs/NAME.arch`."""
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        yield from _quotes(page.read_text().split("\n"))


def _quotes(lines):
    import re

    i = 0
    while i < len(lines):
        if not lines[i].startswith("```"):
            i += 1
            continue
        j = next(k for k in range(i + 1, len(lines)) if lines[k].startswith("```"))
        quote = lines[i + 1:j]
        m = re.search(r"specs/[\w/]+\.arch", " ".join(lines[max(0, i - 2):i] + quote[:1]))
        if m and quote and not quote[0].startswith("$") and (REPO / m.group(0)).exists() \
                and any(q.startswith(("network ", "block ", "stem ")) for q in quote):
            yield m.group(0), quote
        i = j + 1


def test_readme_quotes_equal_the_formatted_specs():
    quotes = list(_readme_quotes())
    assert {p for p, _ in quotes} >= {"specs/mobilenet_v2.arch", "specs/swin_t.arch", "specs/deit_s.arch"}
    for path, quote in quotes:
        file_lines = (REPO / path).read_text().split("\n")
        code_only = {ln.rstrip() for ln in file_lines if "#" not in ln}
        for q in quote:
            if q.startswith("# specs/") or q.strip() in ("", "train { ... }"):
                continue
            # a line of the file, or a line of it with a note the README adds
            assert q in file_lines or q.split("  #")[0].rstrip() in code_only, f"{path}: {q!r}"


def test_a_one_line_guard_around_a_gate_stays_on_one_line():
    """A guard (or gate, or join) whose body is one braced statement on one line prints as written."""
    text = ("network g\ninput   3x32x32\nblock c(t) {\n    residual {\n        conv3\n"
            "        if t > 1 { gate { gap, conv1 0.25x, relu, conv1, sigmoid } }\n    }\n}\nstem   conv3 16\n"
            "stages {\n    16 c x1 t=2\n}\nhead   gap, linear\n")
    source = parse(text, "<guard>")
    assert format_spec(source) == text
    assert "if t > 1 { gate { gap, conv1 0.25x, relu, conv1, sigmoid } }" in format_spec(source, layout=False)
    assert same(parse(format_spec(source, layout=False), "<again>"), source)


def test_flatten_leaves_out_blocks_no_stage_runs():
    """step06 replaces ResNet's bottleneck with `invbottleneck`: the flat file has only the latter."""
    assert set(archdsl.as_network("step06").blocks) == {"bottleneck", "invbottleneck"}
    flat = flatten(archdsl.as_network("step06"))
    assert set(flat.blocks) == {"invbottleneck"}
    assert not archdsl.diff(archdsl.loads(format_spec(flat, layout=False)), "step06")
