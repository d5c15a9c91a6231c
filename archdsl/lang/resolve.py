"""SpecFile(s) -> Network: follow `extends`, let the child's sections and blocks replace the
parent's, interpret scalars, then apply overrides."""
from __future__ import annotations

import os
import re
from pathlib import Path

from . import ast
from .errors import ArchError, ErrorCollector, ResolveError, Span
from .limits import MAX_EXTENDS, MAX_SPEC_CHARS, check_int, too_big
from .network import InitSpec, Network, StageSpec
from .overrides import apply_overrides, split_overrides
from .parser import parse
from .recipe import build_recipe, recipe_fields
from .space import map_words, space_of
from .specpath import find_spec
from .suggest import did_you_mean

_SECTIONS = ("input", "classes", "stem", "downsample", "stages", "head", "taps", "init", "train")
_MISSING_HINTS = {"input": "`input CxHxW`, e.g. `input 3x224x224`",
                  "stages": "`stages { WIDTH BLOCK xDEPTH [sSTRIDE] ... }`, e.g. `stages { 64 plain x2 }`"}


def read_spec(path: Path) -> ast.SpecFile:
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_CHARS * 4:  # refuse before reading: UTF-8 is at most 4 bytes a character
            raise too_big(f"the size of the spec file `{path}` in bytes", size, MAX_SPEC_CHARS * 4, None,
                          "a spec describes a network in a few hundred lines; repeat blocks with `xN`")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        cause = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ResolveError(f"cannot read `{path}`: {cause}", code="E201") from None
    return parse(text, str(path))


def load_chain(spec: ast.SpecFile) -> list[ast.SpecFile]:
    """The spec and its ancestors, nearest first. Cycles are an error naming the chain.
    Linear in the chain's length: each file is resolved once and looked up in a set."""
    chain = [spec]
    names = {spec.name.text}
    seen = {_real(spec.path)}
    while chain[-1].extends is not None:
        ext = chain[-1].extends
        if len(chain) > MAX_EXTENDS:
            raise too_big("the length of the `extends` chain", len(chain), MAX_EXTENDS, ext.span,
                          "flatten some of the chain into one spec")
        parent_path = find_spec(ext.text, Path(chain[-1].path).parent, ext.span)
        parent = read_spec(parent_path)
        real = _real(str(parent_path))
        if parent.name.text in names or real in seen:
            cycle = " -> ".join([s.name.text for s in chain] + [parent.name.text])
            raise ResolveError(f"`extends` goes round in a cycle: {cycle}", ext.span,
                               hint="a spec cannot extend itself or one of its descendants", code="E202")
        chain.append(parent)
        names.add(parent.name.text)
        seen.add(real)
    return chain


def _real(path: str) -> str:
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):
        return path


def merge(chain: list[ast.SpecFile]) -> dict:
    """Fields of the resolved spec: each from the nearest file that states it."""
    merged: dict = {"blocks": {}}
    for spec in reversed(chain):  # root first, child last, so the child wins
        merged["blocks"].update(spec.blocks)
        for field in _SECTIONS:
            value = getattr(spec, field)
            if value is not None:
                merged[field] = value
                merged[f"{field}_file"] = spec
    return merged


def _section_of(key: str) -> str:
    """The section a `set` key changes: a later file restating it discards the `set`."""
    head = key.split(".")[0]
    if head in ("widths", "depths"):
        return "stages"
    if head in ("stages", "train", "classes", "input", "name", "stem", "downsample", "head", "taps"):
        return head
    return f"block {head}"


def _states(spec: ast.SpecFile, section: str) -> bool:
    if section.startswith("block "):
        return section[6:] in spec.blocks
    return section != "name" and getattr(spec, section) is not None


def set_lines(chain: list[ast.SpecFile]) -> list[ast.SetLine]:
    """The `set` lines in force, root first. A `set` is dropped when a file nearer the spec
    restates the section it changed, since that file replaces the section whole."""
    lines = []
    for i in range(len(chain) - 1, -1, -1):
        for line in chain[i].sets:
            section = _section_of(line.key.text)
            if not any(_states(nearer, section) for nearer in chain[:i]):
                lines.append(line)
    return lines


def _apply_set_lines(net: Network, lines: list[ast.SetLine]) -> Network:
    errors = ErrorCollector()
    for line in lines:
        try:
            net = apply_overrides(net, {line.key.text: line.value})
        except ArchError as e:
            for err in e.errors:
                errors.add(type(err)(err.message, line.span, err.hint, err.code))
    errors.raise_if_any()
    return net


def _int(word: ast.Word, what: str, code: str, minimum: int = 1, kind: str | None = None) -> int:
    if not word.text.isdigit() or int(word.text) < minimum:
        raise ResolveError(f"{what} must be a whole number of at least {minimum}, got `{word.text}`",
                           word.span, code=code)
    if kind is not None:
        check_int(kind, int(word.text), what, word.span, code)
    return int(word.text)


def _input(word: ast.Word) -> tuple[int, int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)x(\d+)", word.text)
    if not m or min(int(g) for g in m.groups()) < 1:
        raise ResolveError(f"`input` must be CxHxW, got `{word.text}`", word.span,
                           hint="for example `input 3x224x224`", code="E205")
    c, h, w = (int(g) for g in m.groups())
    check_int("channels", c, "the input's channels", word.span, "E205")
    check_int("size", h, "the input's height", word.span, "E205")
    check_int("size", w, "the input's width", word.span, "E205")
    return c, h, w


def _stage(stage: ast.Stage, blocks: dict[str, ast.Block], errors: ErrorCollector) -> StageSpec | None:
    try:
        width = _int(stage.width, "a stage width", "E207", kind="width")
        if not re.fullmatch(r"x\d+", stage.depth.text) or int(stage.depth.text[1:]) < 1:
            text = stage.depth.text
            raise ResolveError(f"a stage depth is written `xN` with N at least 1, got `{text}`", stage.depth.span,
                               hint=f"write `x{text}`" if text.isdigit() and int(text) > 0
                               else "for example `96 convnext x3`", code="E207")
        depth = check_int("depth", int(stage.depth.text[1:]), "a stage depth", stage.depth.span, "E207")
        if stage.block.text not in blocks:
            raise ResolveError(f"unknown block `{stage.block.text}`", stage.block.span,
                               hint=did_you_mean(stage.block.text, list(blocks))
                               or ("blocks defined: " + ", ".join(sorted(blocks)) if blocks else
                                   "define it with `block NAME { ... }`"), code="E203")
        block = blocks[stage.block.text]
        stride, values = 1, {}
        for arg in stage.args:
            if "=" in arg.text:
                key, value = _stage_value(arg, block)
                values[key] = value
                continue
            if not re.fullmatch(r"s\d+", arg.text) or int(arg.text[1:]) < 1:
                raise ResolveError(f"unknown stage argument `{arg.text}`", arg.span,
                                   hint="a stage line is `WIDTH BLOCK xDEPTH [sSTRIDE] [NAME=VALUE ...]`",
                                   code="E303")
            stride = check_int("stride", int(arg.text[1:]), "a stage stride", arg.span, "E207")
        missing = [p.text for p in block.params if p.text not in values]
        if missing:
            raise ResolveError(f"block `{block.name.text}` reads {_list(missing)} per stage, and this stage "
                               "does not give it", stage.span,
                               hint="add " + " ".join(f"`{m}=VALUE`" for m in missing) + " to the stage line",
                               code="E209")
        return StageSpec(width=width, block=stage.block.text, depth=depth, stride=stride, values=values,
                         span=stage.span)
    except ArchError as e:
        errors.add(e)
        return None


def _list(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _stage_value(arg: ast.Word, block: ast.Block) -> tuple[str, float]:
    """`t=6` on a stage line: a value the stage's block declares as `block NAME(t)`."""
    key, _, text = arg.text.partition("=")
    params = [p.text for p in block.params]
    if key not in params:
        declared = (f"block `{block.name.text}` reads {_list(params)}" if params else
                    f"block `{block.name.text}` reads no per-stage values")
        hint = (f"write {' '.join(f'`{p}={text}`' for p in params[:1])}, or declare `{key}` on the block too"
                if params else f"declare it on the block, `block {block.name.text}({key})`, and use it in the "
                f"block's words (`{key}x`, `dwconv{key}`)")
        raise ResolveError(f"unknown per-stage value `{key}`: {declared}", arg.span, hint=hint, code="E209")
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value == value or value < 0 or value == float("inf"):
        raise ResolveError(f"per-stage value `{arg.text}` is not a number", arg.span,
                           hint=f"for example `{key}=6`", code="E209")
    return key, value


def _init(setting: ast.Setting | None) -> InitSpec:
    from compiler.init import SCHEMES

    if setting is None:
        return InitSpec()
    scheme = setting.key.text
    if scheme not in SCHEMES:
        raise ResolveError(f"unknown init scheme `{scheme}`", setting.key.span,
                           hint=did_you_mean(scheme, list(SCHEMES)) or "schemes: " + ", ".join(SCHEMES),
                           code="E206")
    words = [w for g in setting.groups for w in g]
    bad = words[1:] if scheme != "default" else words  # at most one value; `default` takes none
    if not bad and words and not _INIT_VALUE.get(scheme, lambda t: True)(words[0].text):
        bad = words[:1]
    if bad:
        raise ResolveError(f"`init {scheme}` does not take `{bad[0].text}`", bad[0].span,
                           hint=_INIT_HINT.get(scheme), code="E206")
    return InitSpec(scheme=scheme, arg=words[0].text if words else None, span=setting.span)


def _positive_std(text: str) -> bool:
    try:
        return 0.0 < float(text) < float("inf")
    except ValueError:
        return False


_INIT_VALUE = {"trunc_normal": _positive_std, "kaiming": lambda t: t in ("fan_out", "fan_in"),
               "default": lambda t: False}
_INIT_HINT = {"trunc_normal": "it takes a positive standard deviation, e.g. `init trunc_normal 0.02`",
              "kaiming": "it takes a mode: `init kaiming fan_out` or `init kaiming fan_in`",
              "default": "it takes no value: `init default`"}


def bind_space(chain: list[ast.SpecFile], m: dict, lines: list[ast.SetLine],
               overrides: dict[str, object]) -> tuple[dict, list[ast.SetLine], dict, dict]:
    """A space's open words given their values (those of `overrides` that name them): the merged
    sections and `set` lines with every word filled in, the open values, and the other overrides.
    A spec with nothing open comes back as it is."""
    space = space_of(chain, [m[f] for f in _SECTIONS if f in m] + [m["blocks"], lines])
    if space is None:
        return m, lines, {}, overrides
    given, rest = space.take(overrides)
    env = space.bind(given)
    fill = lambda node: map_words(node, lambda word: space.substitute(word, env))  # noqa: E731
    m = {k: (fill(v) if k in _SECTIONS or k == "blocks" else v) for k, v in m.items()}
    return m, [fill(line) for line in lines], {"space": space.hash, **space.point_values(env)}, rest


def resolve(spec: ast.SpecFile, overrides: dict[str, object] | None = None) -> Network:
    return resolve_chain(load_chain(spec), overrides)


def resolve_chain(chain: list[ast.SpecFile], overrides: dict[str, object] | None = None) -> Network:
    """`resolve` for a chain already read (a space resolves many points of one chain)."""
    spec = chain[0]
    m = merge(chain)
    m, lines, point, overrides = bind_space(chain, m, set_lines(chain), dict(overrides or {}))
    errors = ErrorCollector()
    missing = [f for f in ("input", "stages") if f not in m]
    for field in missing:
        errors.add(ResolveError(f"`{spec.name.text}` has no `{field}` section (nor does any spec it extends)",
                                spec.name.span, hint=f"add {_MISSING_HINTS[field]}", code="E204"))
    errors.raise_if_any()
    for block in m["blocks"].values():
        names = [p.text for p in block.params]
        for k, param in enumerate(block.params):
            if param.text in names[:k]:
                errors.add(ResolveError(f"block `{block.name.text}` declares `{param.text}` twice", param.span,
                                        hint="each per-stage value is named once", code="E209"))
    stages = [_stage(s, m["blocks"], errors) for s in m["stages"]]
    if not m["stages"]:
        errors.add(ResolveError("`stages` is empty", m["stages_file"].stages_span, code="E207"))
    try:
        values, where = recipe_fields(m.get("train", ()))
    except ArchError as e:
        errors.add(e)
        values, where = {}, {}
    fields: dict = dict(
        name=spec.name.text, path=spec.path, chain=tuple(s.name.text for s in chain[1:]),
        blocks=m["blocks"], stem=m.get("stem", ()), downsample=m.get("downsample"),
        head=m.get("head", ()), taps=m.get("taps", ()), spans=_spans(m), values=point,
    )
    readers = {"input": lambda: _input(m["input"]),  # present: checked above
               "classes": lambda: _int(m["classes"], "`classes`", "E206", kind="classes") if "classes" in m else 1000,
               "init": lambda: _init(m.get("init"))}
    for key, read in readers.items():
        try:
            fields[key] = read()
        except ArchError as e:
            errors.add(e)
    errors.raise_if_any()
    fields["stages"] = tuple(stages)
    train_lines = [line for line in lines if line.key.text.startswith("train.")]
    in_file, _ = split_overrides({line.key.text: line.value for line in train_lines})
    where |= {line.key.text.removeprefix("train."): line.key for line in train_lines}
    train_overrides, network_overrides = split_overrides(overrides or {})
    # a bad overridden value is the override's fault, not the file's: no span for it
    where = {k: w for k, w in where.items() if k not in train_overrides}
    fields["train"] = build_recipe(values | in_file | train_overrides, where)
    network = _apply_set_lines(Network(**fields), [line for line in lines if line not in train_lines])
    return apply_overrides(network, network_overrides) if network_overrides else network


def _spans(m: dict) -> dict[str, Span]:
    spans = {}
    for field in _SECTIONS:
        f: ast.SpecFile | None = m.get(f"{field}_file")
        if f is None:
            continue
        value = getattr(f, field)
        if isinstance(value, ast.Node) and hasattr(value, "span"):
            spans[field] = value.span
        elif field == "stages":
            spans[field] = f.stages_span
        elif field in ("train", "taps"):
            spans[field] = getattr(f, f"{field}_span")
        elif value:
            spans[field] = value[0].span
    return spans
