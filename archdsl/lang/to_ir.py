"""Network -> compiler IR. This is where the words of the language get their meaning:
`dim`, `4x`, `stride`, `sN`, `gG`, module paths, and stochastic-depth rates."""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from compiler import Attrs, IRGraph, Residual
from compiler import ops as registry

from . import ast
from .errors import ErrorCollector, OpError
from .limits import EPS_RANGE, INT_RANGES, MAX_BLOCKS, MAX_OPS, MAX_STAGE_DEPTH, VALUE_RANGES, describe, in_range, too_big
from .network import Network
from .suggest import did_you_mean

MAX_DEPTH = MAX_STAGE_DEPTH  # blocks in one stage
_KERNEL_OP = re.compile(r"([a-z]+)(\d+)")


@dataclass
class Context:
    """What words mean where an op sits."""

    dim: int                 # `dim`: the width of the stage (or what the section feeds)
    classes: int
    stride: int | None       # the block's stride for the word `stride`; None outside blocks
    droppath: float = 0.0    # this block's stochastic-depth rate


def op_words() -> list[str]:
    """Every op word a user may write, for suggestions (kernel ops with common kernels)."""
    words = []
    for name, op in registry.REGISTRY.items():
        words.extend(f"{name}{k}" for k in (1, 2, 3, 4, 5, 7, 9, 11)) if op.kernel else words.append(name)
    return words


def lookup_op(word: ast.Word) -> tuple[registry.OpDef, int | None]:
    text = word.text
    if text in registry.REGISTRY:
        op = registry.REGISTRY[text]
        if op.kernel:
            raise OpError(f"`{text}` needs a kernel size", word.span,
                          hint=f"write it in the word, e.g. `{text}3`", code="E302")
        return op, None
    m = _KERNEL_OP.fullmatch(text)
    if m and m.group(1) in registry.REGISTRY and registry.REGISTRY[m.group(1)].kernel:
        kernel = int(m.group(2))
        if kernel < 1:
            raise OpError(f"kernel size must be at least 1 in `{text}`", word.span, code="E302")
        _bounded("kernel", kernel, f"the kernel size in `{text}`", word)
        return registry.REGISTRY[m.group(1)], kernel
    if m and m.group(1) in registry.REGISTRY:
        raise OpError(f"`{m.group(1)}` takes no kernel size", word.span, hint=f"write `{m.group(1)}`",
                      code="E302")
    raise OpError(f"unknown op `{text}`", word.span,
                  hint=did_you_mean(text, op_words()) or "see docs/language.md for the ops", code="E301")


def attrs_for(op: ast.Op, opdef: registry.OpDef, kernel: int | None, ctx: Context) -> Attrs:
    a: dict = {"kernel": kernel}
    seen: dict[str, ast.Word] = {}
    for word in op.args:
        kind, value = read_arg(word, ctx)
        if kind not in opdef.accepts:
            takes = ", ".join(opdef.accepts) if opdef.accepts else "no arguments"
            raise OpError(f"`{op.name.text}` takes no {kind} (`{word.text}`)", word.span,
                          hint=f"`{opdef.name}` takes: {takes}; for example `{opdef.example}`", code="E304")
        if kind in seen:
            raise OpError(f"{kind} given twice to `{op.name.text}`", word.span,
                          hint=f"first given as `{seen[kind].text}`", code="E306")
        seen[kind] = word
        _check_value(kind, value, op.name.text, opdef.name, word)
        if kind == "width":
            value = _width(value, word, ctx)
            kind = "out"
        a[kind] = value
    if "out" not in a and opdef.width_default in ("dim", "classes"):
        a["out"] = ctx.dim if opdef.width_default == "dim" else ctx.classes
    if opdef.needs_value and "value" not in a:
        raise OpError(f"`{op.name.text}` needs a value", op.name.span,
                      hint=f"for example `{opdef.example}`", code="E305")
    if opdef.name == "droppath" and "value" not in a:
        a["value"] = ctx.droppath
    return Attrs(**a)


def _bounded(kind: str, value: int, what: str, word: ast.Word) -> None:
    low, high = INT_RANGES[kind]
    if value > high:
        raise OpError(f"{what} is {value:,}; the most is {high:,}", word.span,
                      hint="the limits are listed in README.md (What is guaranteed)", code="E310")


def _check_value(kind: str, value: object, word_text: str, op: str, word: ast.Word) -> None:
    """Every argument within the range its kind declares (limits.py): one place for every op."""
    if kind in ("width", "stride", "groups") and isinstance(value, int):
        _bounded(kind, value, f"the {kind} of `{word_text}`", word)
    elif kind == "width" and isinstance(value, float) and not 0 < value <= INT_RANGES["width"][1]:
        raise OpError(f"the width multiplier `{word.text}` is out of range", word.span, code="E310")
    elif kind == "eps" and not in_range(value, EPS_RANGE):  # type: ignore[arg-type]
        raise OpError(f"`{word.text}`: eps must be in {describe(EPS_RANGE)}", word.span,
                      hint="for example `ln eps=1e-6`", code="E310")
    elif kind == "value":
        bounds = VALUE_RANGES.get(op)
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise OpError(f"`{word.text}` is not a finite number", word.span,
                          hint=f"`{op}` takes a number" + (f" in {describe(bounds)}" if bounds else ""),
                          code="E310")
        if bounds and not in_range(value, bounds):  # type: ignore[arg-type]
            raise OpError(f"`{op}` takes a value in {describe(bounds)}, got `{word.text}`", word.span,
                          code="E310")


def read_arg(word: ast.Word, ctx: Context) -> tuple[str, object]:
    t = word.text
    if re.fullmatch(r"\d+(\.\d+)?x", t):
        return "width", float(t[:-1])
    if t.isdigit():
        return "width", int(t)
    if re.fullmatch(r"s\d+", t):
        if int(t[1:]) < 1:
            raise OpError(f"stride `{t}` must be at least `s1`", word.span, code="E305")
        return "stride", int(t[1:])
    if t == "stride":
        if ctx.stride is None:
            raise OpError("the word `stride` only has a meaning inside a block", word.span,
                          hint="outside blocks write a fixed stride such as `s2`", code="E307")
        return "stride", ctx.stride
    if re.fullmatch(r"g\d+", t) and int(t[1:]) >= 1:
        return "groups", int(t[1:])
    if t in ("bias", "nobias"):
        return "bias", t == "bias"
    if t.startswith("eps="):
        try:
            return "eps", float(t[4:])
        except ValueError:
            pass
    try:
        return "value", float(t)
    except ValueError:
        raise OpError(f"unknown argument `{t}`", word.span,
                      hint="arguments: a width (`4x`, `64`), `sN`, `stride`, `gG`, `bias`/`nobias`, "
                      "`eps=E` or a number", code="E303") from None


def _width(value: float | int, word: ast.Word, ctx: Context) -> int:
    if isinstance(value, int):
        return value
    width = value * ctx.dim
    if abs(width - round(width)) > 1e-9:
        raise OpError(f"`{word.text}` of {ctx.dim} channels is {width:g}, not a whole number", word.span,
                      hint="pick a multiplier that gives whole channels", code="E308")
    return int(round(width))


def _names(stmts: tuple) -> dict[int, str]:
    """Module names for the ops of a block or head, by their op word: unique words as they
    are (`dwconv`), repeated ones numbered from 1 (`pwconv1`, `pwconv2`). Shortcut ops are
    numbered separately (`shortcut.0`)."""
    flat: list[ast.Op] = []

    def walk(items):
        for s in items:
            if isinstance(s, ast.Residual):
                walk(s.body)
            else:
                flat.append(s)

    walk(stmts)
    kinds = []
    for op in flat:
        try:
            kinds.append(lookup_op(op.name)[0].module_name)
        except OpError:
            kinds.append(op.name.text)
    counts, seen, names = Counter(kinds), Counter(), {}
    for op, kind in zip(flat, kinds):
        seen[kind] += 1
        names[id(op)] = kind if counts[kind] == 1 else f"{kind}{seen[kind]}"
    return names


class _Builder:
    def __init__(self, net: Network):
        self.net = net
        self.ir = IRGraph(name=net.name, input_shape=net.input)
        self.errors = ErrorCollector()

    def op(self, op: ast.Op, x: int, path: str, group: str, ctx: Context) -> int:
        try:
            opdef, kernel = lookup_op(op.name)
            attrs = attrs_for(op, opdef, kernel, ctx)
        except OpError as e:
            self.errors.add(e)
            return x  # keep building to find more errors; nothing is lowered after an error
        return self.ir.add(opdef.name, [x], attrs, path, group, op.span)

    def stmts(self, stmts: tuple, x: int, prefix: str, group: str, ctx: Context, names: dict | None) -> int:
        for i, s in enumerate(stmts):
            if isinstance(s, ast.Residual):
                x = self.residual(s, x, prefix, group, ctx, names)
            else:
                name = names[id(s)] if names is not None else str(i)
                x = self.op(s, x, f"{prefix}.{name}", group, ctx)
        return x

    def residual(self, r: ast.Residual, x: int, prefix: str, group: str, ctx: Context, names: dict | None) -> int:
        if not r.body:
            self.errors.add(OpError("`residual { }` is empty: it would add its input to itself", r.span,
                                    hint="put the branch's ops inside the braces, or remove the residual",
                                    code="E309"))
            return x
        branch = self.stmts(r.body, x, prefix, group, ctx, names)
        start = self.ir._next
        s = self.stmts(r.shortcut or (), x, f"{prefix}.shortcut", group, ctx, None)
        shortcut_nodes = list(range(start, self.ir._next))
        add = self.ir.add("add", [branch, s], group=group, span=r.span)
        self.ir.residuals.append(Residual(x, branch, shortcut_nodes, add, r.span))
        return add

    def _bounded_size(self, blocks: int) -> None:
        """Refuse, before expanding anything, a network past MAX_BLOCKS or MAX_OPS."""
        net = self.net
        where = net.spans.get("stages")
        if blocks > MAX_BLOCKS:
            raise too_big("the number of blocks", blocks, MAX_BLOCKS, where, "lower the stages' `xDEPTH`")
        ops = _count(net.stem) + _count(net.head) + (len(net.stages) - 1) * _count(net.downsample or ())
        ops += sum(st.depth * _count(net.blocks[st.block].body) for st in net.stages if st.block in net.blocks)
        if ops > MAX_OPS:
            raise too_big("the number of ops after expanding every stage", ops, MAX_OPS, where,
                          "lower the stages' `xDEPTH` or the ops in a block")

    def build(self) -> IRGraph:
        net = self.net
        x = self.ir.add("input", [], group="input", span=net.spans.get("input"))
        first = net.stages[0].width
        x = self.stmts(net.stem, x, "stem", "stem", Context(first, net.classes, None), None)
        total = sum(s.depth for s in net.stages)
        too_deep = [st for st in net.stages if st.depth > MAX_DEPTH]  # a typo like `x99999999` must not hang
        for st in too_deep:
            self.errors.add(OpError(f"a stage of {st.depth:,} blocks is too deep (the most is {MAX_DEPTH:,})",
                                    st.span, hint="check the stage's `xDEPTH`", code="E207"))
        if too_deep:
            self.errors.raise_if_any()
        self._bounded_size(total)
        k = 0
        for i, st in enumerate(net.stages):
            group = f"stage {i + 1}"
            if i > 0 and net.downsample:
                x = self.stmts(net.downsample, x, f"downsample.{i}", group, Context(st.width, net.classes, None), None)
            block = net.blocks[st.block]
            names = _names(block.body)
            for j in range(st.depth):
                rate = net.train.droppath * k / (total - 1) if total > 1 else 0.0
                ctx = Context(st.width, net.classes, st.stride if j == 0 else 1, rate)
                x = self.stmts(block.body, x, f"stages.{i}.blocks.{j}", group, ctx, names)
                k += 1
        last = net.stages[-1].width
        x = self.stmts(net.head, x, "head", "head", Context(last, net.classes, None), _names(net.head))
        self.ir.add("output", [x], group="output")
        self.errors.errors = _unique(self.errors.errors)
        self.errors.raise_if_any()
        return self.ir


def _count(stmts) -> int:
    return sum(_count(s.body) + _count(s.shortcut or ()) + 1 if isinstance(s, ast.Residual) else 1
               for s in stmts)


def _unique(errors: list) -> list:
    """A block repeated 27 times reports each of its mistakes once (per place in the source:
    `0.3x` that fails in every stage is one mistake)."""
    seen, out = set(), []
    for e in errors:
        key = (e.code, e.span)
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def network_to_ir(net: Network) -> IRGraph:
    return _Builder(net).build()
