"""Network -> compiler IR. This is where the words of the language get their meaning:
`dim`, `4x`, `in`, `stride`, `sN`, `gG`, per-stage values, module paths, and stochastic-depth
rates."""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, replace

from compiler import Attrs, Gate, IRGraph, Join, Residual
from compiler import ops as registry

from . import ast
from .errors import ErrorCollector, OpError
from .limits import EPS_RANGE, INT_RANGES, MOMENTUM_RANGE, MAX_BLOCKS, MAX_OPS, MAX_STAGE_DEPTH, VALUE_RANGES, describe, in_range, too_big
from .network import Network
from .suggest import suggest_op

_KERNEL_OP = re.compile(r"([a-z]+)(\d+)")


@dataclass
class Context:
    """What words mean where an op sits."""

    dim: int                 # `dim`: the width of the stage (or what the section feeds)
    classes: int
    stride: int | None       # the block's stride for the word `stride`; None outside blocks
    droppath: float = 0.0    # this block's stochastic-depth rate
    values: dict | None = None    # the stage's per-stage values (`t=6`), inside blocks
    block_in: int | None = None   # the block's input node, for `in`; None outside blocks
    in_gate: bool = False         # inside `gate { }`: `gap` keeps a 1x1 map
    index: int | None = None     # the block's index in its stage (`shift` acts on odd ones); None outside


def lookup_op(word: ast.Word) -> tuple[registry.OpDef, int | None]:
    """The op a word names and its kernel: `dwconv7` -> (dwconv, 7), `relu6` -> (relu6, None).
    Only ops that take a kernel read trailing digits."""
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
    raise OpError(f"unknown op `{text}`", word.span, hint=suggest_op(text, registry.REGISTRY), code="E301")


def in_width(op: ast.Op) -> tuple[float | None, set[int]]:
    """`0.25x in`, `6x in` or a bare `in`: a width relative to the block's input. The factor,
    and the positions of the words it took."""
    for i, word in enumerate(op.args):
        if word.text != "in":
            continue
        prev = op.args[i - 1].text if i else ""
        if re.fullmatch(r"\d+(\.\d+)?x", prev):
            return float(prev[:-1]), {i - 1, i}
        return 1.0, {i}
    return None, set()


def attrs_for(op: ast.Op, opdef: registry.OpDef, kernel: int | None, ctx: Context) -> Attrs:
    a: dict = {"kernel": kernel}
    seen: dict[str, ast.Word] = {}
    factor, taken = in_width(op)
    if factor is not None:
        word = op.args[max(taken)]
        if "width" not in opdef.accepts:
            raise OpError(f"`{op.name.text}` takes no width (`{word.text}`)", word.span,
                          hint=f"`{opdef.name}` keeps its input's channels", code="E304")
        if ctx.block_in is None:
            raise OpError("the word `in` (the block's input width) only has a meaning inside a block", word.span,
                          hint="outside blocks write a width relative to `dim` (`4x`) or a number", code="E307")
        seen["width"] = word
    for i, word in enumerate(op.args):
        if i in taken:
            continue
        kind, value = read_arg(word, ctx)
        digits = re.search(r"\d+$", op.name.text)
        if kind not in opdef.accepts and digits and not opdef.kernel and word.text.isdigit():
            raise OpError(f"`{op.name.text} {word.text}`: `{op.name.text}` takes no kernel size or width; the "
                          f"{digits.group()} is part of its name", word.span,
                          hint=f"write `{op.name.text}` alone; it is {opdef.summary}", code="E304")
        if kind == "group_width":
            kind, a["group_width"], value = "groups", value, None
        if kind == "width" and "width" not in opdef.accepts and "value" in opdef.accepts:
            kind, value = "value", float(value)  # `dropout 1` is a probability of 1, not a width
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
        if kind == "shift":
            if ctx.index is None:
                raise OpError("`shift` only has a meaning in a stage's block", word.span,
                              hint="windows shift on every other block of a stage; outside the stages drop "
                              "`shift`", code="E307")
            value = ctx.index % 2 == 1
        if value is not None:
            a[_ATTR.get(kind, kind)] = value
    if "out" not in a and factor is None and opdef.width_default in ("dim", "classes"):
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
                      hint="the limits are listed in docs/guarantees.md", code="E310")


def _check_value(kind: str, value: object, word_text: str, op: str, word: ast.Word) -> None:
    """Every argument within the range its kind declares (limits.py): one place for every op."""
    if kind in ("width", "stride", "groups") and isinstance(value, int):
        _bounded(kind, value, f"the {kind} of `{word_text}`", word)
    elif kind == "width" and isinstance(value, float) and not 0 < value <= INT_RANGES["width"][1]:
        raise OpError(f"the width multiplier `{word.text}` is out of range", word.span, code="E310")
    elif kind == "eps" and not in_range(value, EPS_RANGE):  # type: ignore[arg-type]
        raise OpError(f"`{word.text}`: eps must be in {describe(EPS_RANGE)}", word.span,
                      hint="for example `ln eps=1e-6`", code="E310")
    elif kind == "momentum" and not in_range(value, MOMENTUM_RANGE):  # type: ignore[arg-type]
        raise OpError(f"`{word.text}`: momentum must be in {describe(MOMENTUM_RANGE)}", word.span,
                      hint="the share of each batch in the running statistics, e.g. `bn momentum=0.01`",
                      code="E310")
    elif kind == "padding" and isinstance(value, int):
        _bounded("kernel", value, f"the padding of `{word_text}`", word)
    elif kind == "value":
        bounds = VALUE_RANGES.get(op)
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise OpError(f"`{word.text}` is not a finite number", word.span,
                          hint=f"`{op}` takes a number" + (f" in {describe(bounds)}" if bounds else ""),
                          code="E310")
        if bounds and not in_range(value, bounds):  # type: ignore[arg-type]
            raise OpError(f"`{op}` takes a value in {describe(bounds)}, got `{word.text}`", word.span,
                          code="E310")


_ATTR = {"headdim": "head_dim"}  # argument kinds whose Attrs field is named otherwise


def read_arg(word: ast.Word, ctx: Context) -> tuple[str, object]:
    t = word.text
    if t == "shift":
        return "shift", True
    if re.fullmatch(r"[hd]\d+", t) and int(t[1:]) >= 1:
        return ("heads" if t[0] == "h" else "headdim"), int(t[1:])
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
    if re.fullmatch(r"gw\d+", t) and int(t[2:]) >= 1:
        return "group_width", int(t[2:])
    if t in ("bias", "nobias"):
        return "bias", t == "bias"
    if t.startswith("eps="):
        try:
            return "eps", float(t[4:])
        except ValueError:
            pass
    if t.startswith("momentum="):
        try:
            return "momentum", float(t[9:])
        except ValueError:
            pass
    if re.fullmatch(r"p\d+", t):
        return "padding", int(t[1:])
    try:
        return "value", float(t)
    except ValueError:
        raise OpError(f"unknown argument `{t}`", word.span,
                      hint="arguments: a width (`4x`, `64`), `sN`, `stride`, `gG`, `bias`/`nobias`, "
                      "`eps=E`, `momentum=M`, `pN` padding, `hN` heads, `dN` head dim, `shift` or a number", code="E303") from None


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
    are (`dwconv`), repeated ones numbered from 1 (`pwconv1`, `pwconv2`; `relu6_1` where the
    word ends in a digit). Shortcut ops are numbered separately (`shortcut.0`); a gate's ops
    are named among themselves under `gate` (`gate.conv1`), several gates `gate1`, `gate2`.
    Ops under `if` are named as if always there, so names do not shift between stages."""
    flat: list[ast.Op] = []
    gates: list[ast.Gate] = []

    def walk(items):
        for s in items:
            if isinstance(s, (ast.Residual, ast.Guard, ast.Join)):
                walk(s.body)
            elif isinstance(s, ast.Gate):
                gates.append(s)
            else:
                flat.append(s)

    walk(stmts)
    kinds = []
    for op in flat:
        try:
            kinds.append(lookup_op(op.name)[0].module_name)
        except OpError:  # `dwconvk`: a kernel op whose kernel is a per-stage value
            text = op.name.text
            kernel_op = next((o for n, o in registry.REGISTRY.items() if o.kernel and text.startswith(n)
                              and text[len(n):].isidentifier()), None)
            kinds.append(kernel_op.module_name if kernel_op else op.name.text)
    counts, seen, names = Counter(kinds), Counter(), {}
    for op, kind in zip(flat, kinds):
        seen[kind] += 1
        sep = "_" if kind[-1:].isdigit() else ""
        names[id(op)] = kind if counts[kind] == 1 else f"{kind}{sep}{seen[kind]}"
    for n, gate in enumerate(gates, 1):
        names[id(gate)] = "gate" if len(gates) == 1 else f"gate{n}"
    return names


def _fmt(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def substitute(op: ast.Op, values: dict[str, float]) -> ast.Op:
    """A per-stage value stands in for the number of a word: `tx` is `6x` where the stage
    says `t=6`, `dwconvk` is `dwconv5` where it says `k=5`, a bare `g` is its value."""
    if not values:
        return op

    def word(w: ast.Word, is_name: bool) -> ast.Word:
        text = w.text
        if is_name:
            for key, value in values.items():
                stem = text[:-len(key)]
                if text.endswith(key) and stem in registry.REGISTRY and registry.REGISTRY[stem].kernel:
                    return w.model_copy(update={"text": stem + _fmt(value)})
            return w
        if text in values:
            return w.model_copy(update={"text": _fmt(values[text])})
        if text[:-1] in values and text.endswith("x"):
            return w.model_copy(update={"text": _fmt(values[text[:-1]]) + "x"})
        return w

    return op.model_copy(update={"name": word(op.name, True), "args": tuple(word(a, False) for a in op.args)})


_CMP = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
        "<": lambda a, b: a < b, ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b}


def guard_holds(guard: ast.Guard, values: dict[str, float]) -> bool | None:
    """Whether `if NAME CMP VALUE` holds with these per-stage values; None where it cannot be
    read (a value the stage does not give, a bound that is not a number)."""
    try:
        return _CMP[guard.cmp.text](values[guard.name.text], float(guard.value.text))
    except (KeyError, ValueError):
        return None


class _Builder:
    def __init__(self, net: Network):
        self.net = net
        self.ir = IRGraph(name=net.name, input_shape=net.input)
        self.errors = ErrorCollector()
        self.cls_token: ast.Op | None = None

    def op(self, op: ast.Op, x: int, path: str, group: str, ctx: Context) -> int:
        op = substitute(op, ctx.values or {})
        try:
            opdef, kernel = lookup_op(op.name)
            attrs = attrs_for(op, opdef, kernel, ctx)
            self._class_token(opdef.name, op, ctx)
        except OpError as e:
            self.errors.add(e)
            return x  # keep building to find more errors; nothing is lowered after an error
        if ctx.in_gate and opdef.name == "gap":
            attrs = attrs.with_(keepdim=True)
        nid = self.ir.add(opdef.name, [x], attrs, path, group, op.span)
        factor, _ = in_width(op)
        if factor is not None:
            self.ir.g.nodes[nid]["width_of"] = (ctx.block_in, factor)
        return nid

    def _class_token(self, name: str, op: ast.Op, ctx: Context) -> None:
        """A class token is added once, outside the blocks; `clspool` reads one that exists."""
        if name == "clstoken":
            if ctx.index is not None:
                raise OpError("a class token in a block would add one per block", op.span,
                              hint="add `clstoken` once, in the stem after `tokens`", code="E310")
            if self.cls_token is not None:
                raise OpError("a second class token", op.span,
                              hint=f"the first is added at {self.cls_token.span}; keep one", code="E310")
            self.cls_token = op
        elif name == "clspool" and self.cls_token is None:
            raise OpError("`clspool` reads the class token, but none was added before it", op.span,
                          hint="add `clstoken` in the stem after `tokens`, or pool with `gap`", code="E310")

    def stmts(self, stmts: tuple, x: int, prefix: str, group: str, ctx: Context, names: dict | None) -> int:
        for i, s in enumerate(stmts):
            if isinstance(s, ast.Residual):
                x = self.residual(s, x, prefix, group, ctx, names)
            elif isinstance(s, ast.Gate):
                x = self.gate(s, x, f"{prefix}.{names[id(s)] if names is not None else i}", group, ctx)
            elif isinstance(s, ast.Guard):
                if self.holds(s, ctx):
                    x = self.stmts(s.body, x, prefix, group, ctx, names)
            elif isinstance(s, ast.Join):
                x = self.join(s, x, prefix, group, ctx, names)
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
        self.ir.residuals.append(Residual(x, branch, shortcut_nodes, add, r.span,
                                          optional=r.shortcut_none is not None))
        return add

    def gate(self, g: ast.Gate, x: int, prefix: str, group: str, ctx: Context) -> int:
        if not g.body:
            self.errors.add(OpError("`gate { }` is empty: it would multiply its input by itself", g.span,
                                    hint="put the gate's ops inside the braces, e.g. "
                                    "`gate { gap, conv1 0.25x in, relu, conv1, sigmoid }`", code="E309"))
            return x
        inner = replace(ctx, in_gate=True)
        branch = self.stmts(g.body, x, prefix, group, inner, _names(g.body))
        mul = self.ir.add("mul", [x, branch], group=group, span=g.span)
        self.ir.gates.append(Gate(x, branch, mul, g.span))
        return mul

    def join(self, j: ast.Join, x: int, prefix: str, group: str, ctx: Context, names: dict | None) -> int:
        """`concat { }`: cat(x, body(x)); `subtract { }`: body(x) - x. Its ops are named with
        the block's own, as a residual's are."""
        if not j.body:
            what = "join its input to itself" if j.kind == "concat" else "subtract its input from itself"
            self.errors.add(OpError(f"`{j.kind} {{ }}` is empty: it would {what}", j.span,
                                    hint=f"put the branch's ops inside the braces, e.g. "
                                    f"`{'concat { bn, relu, conv3 32 }' if j.kind == 'concat' else 'subtract { avgpool3 }'}`",
                                    code="E309"))
            return x
        branch = self.stmts(j.body, x, prefix, group, ctx, names)
        kind = "cat" if j.kind == "concat" else "sub"
        node = self.ir.add(kind, [x, branch] if kind == "cat" else [branch, x], group=group, span=j.span)
        self.ir.joins.append(Join(kind, x, branch, node, j.span))
        return node

    def holds(self, guard: ast.Guard, ctx: Context) -> bool:
        values = ctx.values or {}
        name = guard.name.text
        if name not in values:
            declared = ", ".join(f"`{v}`" for v in values) or "none"
            self.errors.add(OpError(f"`if {name} ...` reads `{name}`, which is not a per-stage value of this block",
                                    guard.name.span, hint=f"per-stage values here: {declared}; declare it as "
                                    f"`block NAME({name})` and give `{name}=VALUE` on each stage line", code="E209"))
            return False
        held = guard_holds(guard, values)
        if held is None:
            self.errors.add(OpError(f"`{guard.value.text}` is not a number", guard.value.span,
                                    hint=f"compare with a number: `if {name} > 1`", code="E305"))
            return False
        return held

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
        too_deep = [st for st in net.stages if st.depth > MAX_STAGE_DEPTH]  # a typo like `x99999999` must not hang
        for st in too_deep:
            self.errors.add(OpError(f"a stage of {st.depth:,} blocks is too deep (the most is {MAX_STAGE_DEPTH:,})",
                                    st.span, hint="check the stage's `xDEPTH`", code="E207"))
        if too_deep:
            self.errors.raise_if_any()
        self._bounded_size(total)
        k = 0
        self.ir.stage_blocks = [st.block for st in net.stages]  # for hints that name a block (`--set swin.wattn...`)
        self.ir.spec_path = str(net.path) if net.path else None  # the spec checked (not one it extends)
        for i, st in enumerate(net.stages):
            group = f"stage {i + 1}"
            if i > 0 and net.downsample:
                x = self.stmts(net.downsample, x, f"downsample.{i}", group, Context(st.width, net.classes, None), None)
            block = net.blocks[st.block]
            names = _names(block.body)
            for j in range(st.depth):
                rate = net.train.droppath * k / (total - 1) if total > 1 else 0.0
                ctx = Context(st.width, net.classes, st.stride if j == 0 else 1, rate, st.values, x, index=j)
                x = self.stmts(block.body, x, f"stages.{i}.blocks.{j}", group, ctx, names)
                k += 1
        last = net.stages[-1].width
        x = self.stmts(net.head, x, "head", "head", Context(last, net.classes, None), _names(net.head))
        self.ir.add("output", [x], group="output")
        self.errors.errors = _unique(self.errors.errors)
        self.errors.raise_if_any()
        return self.ir


def _count(stmts) -> int:
    """Ops in a body, those inside residuals, gates and `if`s included."""
    return sum(1 + _count(getattr(s, "body", ())) + _count(getattr(s, "shortcut", None) or ()) for s in stmts)


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
