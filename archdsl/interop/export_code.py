"""A network as one readable PyTorch file whose only dependency is torch.

Generic over the op registry and the IR, not a template per family:
- every module is built by its op's own lowering (`OpDef.module`), and the arguments its
  constructor was called with are recorded while it is built; a torch.nn module is written
  as that call (`nn.Conv2d(96, 96, 7, padding=3, groups=96)`), any other module class as
  the same call after its source, copied into the file (`inspect.getsource`);
- the forward is written from the lowered IR: one line per op, the layout permutes where the
  layout pass put them, residual joins, a shape comment on each line;
- each block kind (the spec's `block NAME`) becomes one class; the arguments that differ
  between its uses become its `__init__` parameters, expressed through `dim` (the stage
  width), `in_dim` and `stride` where they can be, a parameter of their own otherwise.

Module paths are those of `archdsl.build`, so the state dicts are interchangeable. A new op
needs nothing here; a new structural join (a node without a module, like `add`) needs one
entry in `JOINS`.
"""
from __future__ import annotations

import ast as pyast
import builtins
import inspect
import keyword
import re
import sys
import types
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction

from compiler import ops
from compiler.ops import NCHW, NHWC, cat_dim
from compiler.passes import LOWERING_PASSES
from compiler.passes.channels_last import applies as runs_channels_last

from ..api import SpecLike, check

# Structural nodes (no module) and how they read in Python: name -> format of its inputs.
JOINS = {"add": "{0} + {1}", "mul": "{0} * {1}", "sub": "{0} - {1}", "cat": "torch.cat([{0}, {1}], {dim})"}
BRANCH = {"add": 0, "sub": 0, "mul": 1, "cat": 1}  # which input of a join is its branch (compiler/ir.py)
_PERMUTE = {NHWC: "x.permute(0, 2, 3, 1)", NCHW: "x.permute(0, 3, 1, 2)"}
_BLOCK = re.compile(r"stages\.(\d+)\.blocks\.(\d+)$")
_IDENT = re.compile(r"[A-Za-z_]\w*$")
CHANNELS_LAST_WHY = "convs run fastest on channels-last memory"


class ExportError(Exception):
    """The network uses something this exporter cannot write (said plainly, with what to do)."""


# ---------------------------------------------------------------- recording constructor calls
@dataclass
class Call:
    """How a module was constructed: its class and the arguments, by name."""

    cls: type
    args: dict            # parameter name -> value, in signature order
    varargs: tuple = ()


class _Recorder:
    """Records the arguments of the outermost `__init__` of every nn.Module built inside it."""

    def __init__(self):
        self.calls: dict[int, Call] = {}
        self._alive: list = []  # every recorded module, so no id is reused while recording

    def _profile(self, frame, event, arg):
        # Not filtered by the name `__init__`: once torch.compile has run, nn.Module.__init__
        # is dynamo's `patched_init` wrapper, and a module without an __init__ of its own
        # (Tokens) is built through that.
        code = frame.f_code
        if event != "call" or not code.co_argcount or code.co_varnames[0] != "self":
            return
        from torch import nn

        obj = frame.f_locals.get("self")
        if not isinstance(obj, nn.Module) or id(obj) in self.calls:
            return
        init = getattr(type(obj).__init__, "__code__", None)
        if init is not frame.f_code:
            return
        info = inspect.getargvalues(frame)
        args = {n: info.locals[n] for n in info.args[1:]}
        if info.keywords:
            args.update(info.locals[info.keywords])
        varargs = tuple(info.locals[info.varargs]) if info.varargs else ()
        self.calls[id(obj)] = Call(type(obj), args, varargs)
        self._alive.append(obj)

    def __enter__(self):
        self._old = sys.getprofile()
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc):
        sys.setprofile(self._old)


# ---------------------------------------------------------------- the lowered IR, as sections
@dataclass
class Node:
    nid: int
    op: str
    path: str
    inputs: list[int]
    users: list[int]
    layout: str
    shape: tuple
    call: Call | None = None
    expr: str = ""     # a structural node other than a join, as a format of its inputs (a features build's)


@dataclass
class BlockUse:
    stage: int
    index: int
    nodes: list[Node]            # the block's nodes, permutes and joins included
    dim: int
    in_dim: int
    stride: int
    in_layout: str = NCHW


@dataclass
class Lowered:
    name: str
    input_shape: tuple
    nodes: dict[int, Node]
    order: list[int]
    section: dict[int, str]      # node -> "stages.i.blocks.j" or "" (the network's own forward)
    blocks: dict[str, list[BlockUse]] = field(default_factory=dict)   # block kind -> its uses
    depths: list[int] = field(default_factory=list)  # blocks built per stage: a features build's
                                                     # end at its last tap, the stages after it gone
    taps: list[dict] = field(default_factory=list)   # what a taps build returns (`feature_info`), in order
    features: bool = False                           # returns the taps only (else the output, then the taps)


def lowered(spec: SpecLike, **overrides) -> tuple[Lowered, object]:
    """The network's IR after every pass, with each op's module built (on `meta`) and its
    constructor call recorded."""
    import torch

    net, ir = check(spec, **overrides)
    for run_pass in LOWERING_PASSES:
        run_pass(ir)
    nodes: dict[int, Node] = {}
    rec = _Recorder()
    with torch.device("meta"), rec:
        built = {}
        for nid, d in ir.nodes():
            meta = d["meta"]
            if d["path"]:
                built[nid] = ops.get(d["op"]).module(d["attrs"], meta["in_shape"], meta["ran_in"])
            nodes[nid] = Node(nid, d["op"], d["path"], ir.inputs(nid), ir.users(nid), meta.get("layout", NCHW),
                              tuple(meta.get("shape", ())), expr=_structural(d, len(ir.inputs(nid))))
    for nid, module in built.items():
        if id(module) not in rec.calls:
            raise ExportError(f"could not record how `{type(module).__name__}` at {nodes[nid].path} was built")
        nodes[nid].call = rec.calls[id(module)]
    order = sorted(nodes)
    section = _sections(nodes, order)
    cut = any(d.get("returns") == "taps" for _, d in ir.nodes() if d["op"] == "output")  # a features build
    low = Lowered(net.name, tuple(net.input), nodes, order, section, taps=list(getattr(ir, "feature_info", [])),
                  features=cut)
    for i, st in enumerate(net.stages):
        low.depths.append(0)
        for j in range(st.depth):
            key = f"stages.{i}.blocks.{j}"
            members = [nodes[n] for n in order if section[n] == key]
            if not members and cut:  # past the last tap: this block and every one after it are not built
                low.depths = [d for d in low.depths if d]
                return low, net
            first = next((n for n in members if n.op not in JOINS), None)
            if first is None:
                raise ExportError(f"block `{st.block}` has no ops (stage {i + 1} is an identity); "
                                  "give the block an op, or remove the stage")
            in_dim = nodes[first.inputs[0]].shape[0]
            low.blocks.setdefault(st.block, []).append(
                BlockUse(i, j, members, st.width, in_dim, st.stride if j == 0 else 1, nodes[first.inputs[0]].layout))
            low.depths[i] += 1
    return low, net


def _structural(d: dict, inputs: int) -> str:
    """How a features build's own nodes read (compiler/passes/taps.py): tokens back to their
    map, and the output returning the maps (after the network's output where it keeps it)."""
    if d["op"] == "tap":
        return "{0}"
    if d["op"] == "tomap":
        return f"{{0}}[:, {d['drop']}:].unflatten(1, {tuple(d['grid'])})"
    if d["op"] == "output" and d.get("returns") == "taps":
        return "return [" + ", ".join(f"{{{i}}}" for i in range(inputs)) + "]"
    if d["op"] == "output" and d.get("returns") == "both":
        return "return {0}, [" + ", ".join(f"{{{i}}}" for i in range(1, inputs)) + "]"
    return ""


def _sections(nodes: dict[int, Node], order: list[int]) -> dict[int, str]:
    """Each node's block (`stages.i.blocks.j`), or "" for the network's own forward. A join
    belongs where its first input comes from; a permute to the block on both its sides, and
    to the network's forward when it sits between two sections (a stem and a block)."""
    memo: dict[int, str] = {}

    def of_path(path: str) -> str:
        parts = path.split(".")
        key = ".".join(parts[:4])
        return key if len(parts) > 4 and _BLOCK.match(key) else ""

    def up(nid: int) -> str:
        while nodes[nid].op == "permute":
            nid = nodes[nid].inputs[0]
        return sec(nid)

    def down(nid: int) -> set[str]:
        out = set()
        for u in nodes[nid].users:
            out |= down(u) if nodes[u].op == "permute" else {sec(u)}
        return out

    def sec(nid: int) -> str:
        if nid not in memo:
            n = nodes[nid]
            if n.path:
                memo[nid] = of_path(n.path)
            elif n.op in JOINS:  # with its branch: a block that ends in a concat holds the concat
                memo[nid] = up(n.inputs[BRANCH[n.op]])
            elif n.op == "permute":  # with what it feeds when that is one section, else with its input
                after = down(nid)
                memo[nid] = after.pop() if len(after) == 1 else up(n.inputs[0])
            else:
                memo[nid] = ""
        return memo[nid]

    return {nid: sec(nid) for nid in order}


# ---------------------------------------------------------------- writing values and calls
def _literal(v) -> str:
    if isinstance(v, (bool, int, str)) or v is None:
        return repr(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (tuple, list)):
        items = [_literal(x) for x in v]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")" if isinstance(v, tuple) \
            else "[" + ", ".join(items) + "]"
    raise ExportError(f"cannot write the constructor argument {v!r} ({type(v).__name__}) as Python")


def class_ref(cls: type) -> str:
    import torch.nn as nn

    if getattr(nn, cls.__name__, None) is cls:
        return f"nn.{cls.__name__}"
    if cls.__module__.startswith("torch."):
        return f"{cls.__module__}.{cls.__qualname__}"
    return cls.__name__


def _call_text(call: Call, exprs: dict[str, str]) -> str:
    """`nn.Conv2d(96, 96, 7, padding=3, groups=96)`: the leading required arguments
    positionally, the rest by name, those equal to their default left out."""
    sig = inspect.signature(call.cls.__init__)
    params = [p for p in list(sig.parameters.values())[1:] if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    parts, positional = [], True
    for p in params:
        if p.name not in call.args:
            positional = False
            continue
        value = call.args[p.name]
        if p.default is not p.empty and _same(value, p.default) and exprs.get(p.name, _literal(value)) == _literal(value):
            positional = False
            continue
        text = exprs.get(p.name, None) or _literal(value)
        if positional and p.default is p.empty and p.kind != p.KEYWORD_ONLY:
            parts.append(text)
        else:
            positional = False
            parts.append(f"{p.name}={text}")
    parts += [_literal(v) for v in call.varargs]
    extra = [k for k in call.args if k not in sig.parameters]
    parts += [f"{k}={exprs.get(k) or _literal(call.args[k])}" for k in extra]
    return f"{class_ref(call.cls)}({', '.join(parts)})"


def _same(a, b) -> bool:
    try:
        return type(a) is type(b) and bool(a == b) or (a is None and b is None)
    except Exception:  # noqa: BLE001 - a value without a plain ==: not a default
        return False


# ---------------------------------------------------------------- block classes
@dataclass
class BlockClass:
    name: str
    kind: str
    params: list[str]                        # __init__ parameters after self
    exprs: dict[str, dict[str, str]]         # relpath -> argument -> expression
    template: BlockUse                       # a use with every module (the shortcut included)
    optional: list[str]                      # relpaths built only `if shortcut`
    uses: list[BlockUse]
    values: dict[tuple[int, int], dict]      # (stage, index) -> parameter -> value


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[_\-\s]+", name) if p) or "Block"


def _relpath(use: BlockUse, node: Node) -> str:
    return node.path[len(f"stages.{use.stage}.blocks.{use.index}."):]


def _signature(use: BlockUse, skip_shortcut: bool) -> tuple:
    return tuple((n.op, _relpath(use, n) if n.path else "", n.layout, n.call.cls if n.call else None)
                 for n in use.nodes if not (skip_shortcut and _relpath(use, n).startswith("shortcut.")))


def block_classes(low: Lowered) -> list[BlockClass]:
    """One class per block kind; uses whose structure differs beyond an optional shortcut
    get a class each (`Kind`, `Kind2`, ...)."""
    out: list[BlockClass] = []
    taken = set()
    for kind, uses in low.blocks.items():
        groups: dict[tuple, list[BlockUse]] = defaultdict(list)
        for u in uses:
            groups[_signature(u, skip_shortcut=True)].append(u)
        for k, group in enumerate(groups.values()):
            base = _camel(kind) + ("" if _camel(kind).lower().endswith("block") else "Block")
            name = base if k == 0 else f"{base}{k + 1}"
            while name in taken:
                name += "_"
            taken.add(name)
            out.append(_block_class(name, kind, group))
    return out


def _block_class(name: str, kind: str, uses: list[BlockUse]) -> BlockClass:
    with_sc = [u for u in uses if any(_relpath(u, n).startswith("shortcut.") for n in u.nodes if n.path)]
    template = with_sc[0] if with_sc else uses[0]
    shapes = {_signature(u, False) for u in with_sc}
    if len(shapes) > 1:
        raise ExportError(f"block `{kind}` has shortcuts of different structure in different stages")
    optional = []
    if with_sc and len(with_sc) != len(uses):
        optional = sorted({_relpath(template, n).split(".")[0] for n in template.nodes
                           if n.path and _relpath(template, n).startswith("shortcut.")})
    params = ["dim"]
    if any(u.in_dim != u.dim for u in uses):
        params.append("in_dim")
    if len({u.stride for u in uses}) > 1:
        params.append("stride")
    values = {(u.stage, u.index): {p: getattr(u, p) for p in params} for u in uses}
    exprs: dict[str, dict[str, str]] = {}
    own: list[str] = []
    for n in template.nodes:
        if not n.path:
            continue
        rel = _relpath(template, n)
        per_use = []
        for u in uses:
            match = next((m for m in u.nodes if m.path and _relpath(u, m) == rel), None)
            per_use.append(match.call.args if match else None)
        present = [(u, a) for u, a in zip(uses, per_use) if a is not None]
        exprs[rel] = {}
        sub = {p: [getattr(u, p) for u, _ in present] for p in params}
        for arg in n.call.args:
            vals = [a[arg] for _, a in present]
            expr = _expression(vals, sub)
            if expr is None:  # differs between uses in a way no parameter explains: its own
                pname = _ident(f"{rel}_{arg}")
                own.append(pname)
                expr = pname
                for u, a in present:
                    values[(u.stage, u.index)][pname] = a[arg]
            exprs[rel][arg] = expr
    if optional:
        own.append("shortcut")
        for u in uses:
            values[(u.stage, u.index)]["shortcut"] = u in with_sc
    return BlockClass(name, kind, params + own, exprs, template, optional, uses, values)


def _ident(text: str) -> str:
    return re.sub(r"\W", "_", text)


def _expression(vals: list, ctx: dict[str, list]) -> str | None:
    """An expression for one argument across a block's uses: a literal where it never
    changes (and is no channel count), else `dim`, `in_dim`, `4 * dim`, `dim // 4` or
    `stride`; None where nothing fits."""
    const = all(_same(v, vals[0]) for v in vals)
    ints = all(type(v) is int for v in vals)
    if const and not (ints and vals[0] >= 8):
        return _literal(vals[0])
    if ints:
        for p in ("dim", "in_dim"):
            if p in ctx and ctx[p] == vals:
                return p
        for p in ("dim", "in_dim"):
            if p not in ctx:
                continue
            ratios = {Fraction(v, d) for v, d in zip(vals, ctx[p])}
            if len(ratios) == 1:
                r = ratios.pop()
                if r.denominator == 1:
                    return f"{r.numerator} * {p}"
                if r.numerator == 1:
                    return f"{p} // {r.denominator}"
        if "stride" in ctx and ctx["stride"] == vals:
            return "stride"
    return _literal(vals[0]) if const else None


# ---------------------------------------------------------------- module trees (__init__)
class Tree:
    """Modules by path, as containers: `Sequential` for children 0..n-1, `ModuleDict` otherwise."""

    def __init__(self):
        self.children: dict[str, "Tree | str"] = {}

    def put(self, parts: list[str], text: str) -> None:
        if len(parts) == 1:
            self.children[parts[0]] = text
        else:
            sub = self.children.setdefault(parts[0], Tree())
            sub.put(parts[1:], text)

    @property
    def sequential(self) -> bool:
        return list(self.children) == [str(i) for i in range(len(self.children))]

    def text(self, indent: str) -> str:
        inner = indent + "    "
        if self.sequential:
            items = [f"{inner}{_text(c, inner)}," for c in self.children.values()]
            return "nn.Sequential(\n" + "\n".join(items) + f"\n{indent})"
        items = [f"{inner}{k!r}: {_text(c, inner)}," for k, c in self.children.items()]
        return "nn.ModuleDict({\n" + "\n".join(items) + f"\n{indent}}})"


def _sequentials(tree: Tree, root: str = "self") -> dict[str, int]:
    """Access expression -> length, of every Sequential in the tree."""
    out = {}
    for key, child in tree.children.items():
        if isinstance(child, Tree):
            expr = _access([key], tree, root)
            if child.sequential:
                out[expr] = len(child.children)
            out |= {k.replace(root, expr, 1): v for k, v in _sequentials(child, root).items()}
    return out


def _collapse(lines: list[str], seqs: dict[str, int]) -> list[str]:
    """`x = self.stem[0](x)` ... `x = self.stem[3](x)` over a whole Sequential -> `x = self.stem(x)`."""
    pat = re.compile(r"(\s*)(\w+) = (.+)\[(\d+)\]\((\w+)\)(  # .*)?$")
    out, k = [], 0
    while k < len(lines):
        m = pat.match(lines[k])
        if m and m.group(4) == "0" and m.group(3) in seqs and m.group(2) == m.group(5):
            n = seqs[m.group(3)]
            run = [pat.match(line) for line in lines[k:k + n]]
            if len(run) == n and all(r and r.group(1, 2, 3, 5) == m.group(1, 2, 3, 5) and r.group(4) == str(j)
                                     for j, r in enumerate(run)):
                out.append(f"{m.group(1)}{m.group(2)} = {m.group(3)}({m.group(2)}){run[-1].group(6) or ''}")
                k += n
                continue
        out.append(lines[k])
        k += 1
    return out


def _text(child, indent: str) -> str:
    return child if isinstance(child, str) else child.text(indent)


def _access(parts: list[str], tree: Tree, root: str = "self") -> str:
    """`self.stem[0]`, `self.head.norm`, `self.downsample["1"][0]`."""
    text, node = root, tree
    for p in parts:
        if isinstance(node, Tree) and node.sequential and p.isdigit():
            text += f"[{p}]"
        elif _IDENT.match(p) and not hasattr(__import__("torch").nn.Module, p):
            text += f".{p}"
        else:
            text += f"[{p!r}]"
        node = node.children.get(p) if isinstance(node, Tree) else None
    return text


# ---------------------------------------------------------------- forward bodies
def _shape_comment(node: Node, symbolic: bool) -> str:
    if not node.shape:
        return ""
    if len(node.shape) == 1:
        dims = ["B", "C" if symbolic else str(node.shape[0])]
    elif len(node.shape) == 2:  # a token sequence (C, N) runs as (B, N, C)
        dims = ["B", "N", "C"] if symbolic else ["B", str(node.shape[1]), str(node.shape[0])]
    else:
        c, h, w = ("C", "H", "W") if symbolic else map(str, node.shape)
        dims = ["B", h, w, c] if node.layout == NHWC else ["B", c, h, w]
    return f"  # ({', '.join(dims)})"


def forward_lines(nodes: list[Node], call_of, symbolic: bool, optional: frozenset = frozenset(),
                  names: dict[tuple[int, int], str] | None = None) -> list[str]:
    """Lines of a forward over `nodes`, in order. Whatever flows in from outside them is `x`;
    the main stream stays `x`, and a value read again later (a residual's input) is kept as
    `shortcut` (`shortcut2` when one is already live) for its later readers. `call_of(node)`
    gives the module expression; `optional` nodes run under `if self.shortcut is not None:`.
    `names`: (source, reader) -> the variable to keep that value in instead (a returned tap's,
    `stages_1`); the output reads each of its inputs from the variable named for it."""
    names = names or {}
    inside = {n.nid for n in nodes}
    reads: dict[tuple[int, int], str] = {}   # (source, reader) -> the variable it reads
    lines: list[str] = []
    outside = [(s, n.nid) for n in nodes for s in n.inputs if s not in inside]
    for k, key in enumerate(outside):
        reads[key] = "x" if k == 0 else f"shortcut{k if k > 1 else ''}"
        if k:
            lines.append(f"{reads[key]} = x")
    guarded = False
    for n in nodes:
        args = [reads.pop((s, n.nid)) for s in n.inputs]
        if n.op == "output":
            for k, s in enumerate(n.inputs):
                name = names.get((s, n.nid))
                if name and args[k] != name:  # the main stream (`x`) returned: named for its tap
                    lines.append(f"{name} = {args[k]}")
                    args[k] = name
            lines.append(n.expr.format(*args))
            continue
        named = next((names[(n.nid, u)] for u in n.users if (n.nid, u) in names), None)
        if n.op == "tap":  # one value returned twice: the second time under its own tap's name
            expr, out = args[0], named or args[0]
        elif n.expr:
            expr, out = n.expr.format(*args), args[0]
        elif n.op in JOINS:
            expr, out = JOINS[n.op].format(*args, dim=cat_dim(n.layout)), "x" if "x" in args else args[0]
        elif n.op == "permute":
            expr, out = f"{args[0]}{_PERMUTE[n.layout][1:]}", args[0]
        else:
            expr, out = f"{call_of(n)}({args[0]})", args[0]
        if (n.nid in optional) != guarded:
            guarded = not guarded
            if guarded:
                lines.append("if self.shortcut is not None:")
        pad = "    " if guarded else ""
        lines.append(f"{pad}{out} = {expr}{_shape_comment(n, symbolic)}")
        readers = [u for u in n.users if u in inside]
        if readers:
            reads[(n.nid, readers[0])] = out
            for u in readers[1:]:  # a fork: the first reader continues, the others read a copy
                live = set(reads.values())
                alias = names.get((n.nid, u))
                alias = alias if alias and alias not in live and alias != out else \
                    next(a for a in (f"shortcut{k}" if k > 1 else "shortcut" for k in range(1, 99)) if a not in live)
                lines.append(f"{pad}{alias} = {out}")
                reads[(n.nid, u)] = alias
    return lines


# ---------------------------------------------------------------- custom module sources
def _sources(classes: list[type]) -> tuple[list[str], list[str]]:
    """The source of each non-torch module class, with the module-level functions, classes and
    constants it uses (recursively), and the imports they need."""
    imports: list[str] = []
    chunks: list[str] = []
    done: set = set()

    def add(obj, module) -> None:
        key = (module.__name__, getattr(obj, "__qualname__", None))
        if key in done:
            return
        done.add(key)
        src = inspect.getsource(obj)
        tree = pyast.parse(src)
        used = {node.id for node in pyast.walk(tree) if isinstance(node, pyast.Name)}
        for name in sorted(used):
            if name in ("torch", "nn") or hasattr(builtins, name) or not hasattr(module, name):
                continue
            value = getattr(module, name)
            if isinstance(value, types.ModuleType):
                stmt = f"import {value.__name__}" if value.__name__ == name else \
                    f"import {value.__name__} as {name}"
                if stmt not in imports:
                    imports.append(stmt)
            elif (inspect.isclass(value) or inspect.isfunction(value)) and value.__module__ == module.__name__:
                add(value, module)
            elif (inspect.isclass(value) or inspect.isfunction(value)) and value.__module__.startswith("compiler."):
                add(value, sys.modules[value.__module__])  # another of the compiler's modules
            elif (inspect.isclass(value) or inspect.isfunction(value)) and value.__module__.startswith("torch"):
                stmt = f"from {value.__module__} import {value.__name__}" + \
                    (f" as {name}" if value.__name__ != name else "")
                if stmt not in imports:
                    imports.append(stmt)
            elif isinstance(value, (int, float, str, tuple, bool)) and not inspect.isclass(value):
                chunks.append(f"{name} = {_literal(value)}")
        chunks.append(src.rstrip())

    for cls in classes:
        module = sys.modules[cls.__module__]
        try:
            add(cls, module)
        except (OSError, TypeError) as e:
            raise ExportError(f"cannot read the source of `{cls.__qualname__}` ({e})") from None
    return imports, chunks


# ---------------------------------------------------------------- the file
def _block_text(bc: BlockClass) -> tuple[str, set[type]]:
    t = bc.template
    tree = Tree()
    classes: set[type] = set()
    for n in t.nodes:
        if n.path:
            rel = _relpath(t, n)
            tree.put(rel.split("."), _call_text(n.call, bc.exprs.get(rel, {})))
            classes.add(n.call.cls)
    sig = ", ".join(["self", *bc.params])
    stages = sorted({u.stage + 1 for u in bc.uses})
    where = f"stage{'s' if len(stages) > 1 else ''} {', '.join(map(str, stages))}"
    layout = "channels-last (B, H, W, C)" if t.in_layout == NHWC else "(B, C, H, W)"
    lines = [f"class {bc.name}(nn.Module):",
             f'    """`block {bc.kind}` of the spec, in {where}; its input arrives {layout}."""', "",
             f"    def __init__({sig}):", "        super().__init__()"]
    for key, child in tree.children.items():
        text = _text(child, "        ")
        if key in bc.optional:
            text = f"{text} if shortcut else None"
        lines.append(f"        {_access([key], tree)} = {text}")
    optional = frozenset(n.nid for n in t.nodes if n.path and _relpath(t, n).split(".")[0] in bc.optional)

    def call_of(n: Node) -> str:
        return _access(_relpath(t, n).split("."), tree)

    lines += ["", "    def forward(self, x: torch.Tensor) -> torch.Tensor:"]
    body = _collapse(forward_lines(t.nodes, call_of, True, optional), _sequentials(tree))
    lines += [f"        {line}" for line in body]
    lines += ["        return x"]
    return "\n".join(lines), classes


def _block_args(bc: BlockClass, values: dict) -> str:
    parts = [_literal(values["dim"])] + [f"{p}={_literal(values[p])}" for p in bc.params[1:]]
    return f"{bc.name}({', '.join(parts)})"


def code(spec: SpecLike, **overrides) -> str:
    """The Python source of one file defining the network (and its blocks) with torch only."""
    low, net = lowered(spec, **overrides)
    bcs = block_classes(low)
    by_use = {(u.stage, u.index): bc for bc in bcs for u in bc.uses}
    classes: set[type] = set()
    block_texts = []
    for bc in bcs:
        text, used = _block_text(bc)
        block_texts.append(text)
        classes |= used

    # the network's own modules (stem, downsample, head, ...) and its stages
    tree = Tree()
    for nid in low.order:
        n = low.nodes[nid]
        if n.path and not low.section[nid]:
            tree.put(n.path.split("."), _call_text(n.call, {}))
            classes.add(n.call.cls)
    stage_lines = []
    for i, depth in enumerate(low.depths):
        calls = [_block_args(by_use[(i, j)], by_use[(i, j)].values[(i, j)]) for j in range(depth)]
        if depth > 2 and len(set(calls[1:])) == 1:
            items = f"[{calls[0]}] + [{calls[1]} for _ in range({depth - 1})]"
        elif depth > 2:
            items = "[\n" + "".join(f"                {c},\n" for c in calls) + "            ]"
        else:
            items = "[" + ", ".join(calls) + "]"
        stage_lines.append(f"            Stage({items}),")

    # the network's forward: its own nodes, and one item per block use (named by its last node)
    item_of: dict[int, int] = {}
    block_of_item: dict[int, tuple[int, int]] = {}
    members: dict[str, list[int]] = defaultdict(list)
    for nid in low.order:
        members[low.section[nid]].append(nid)
    for nid in low.order:
        sec = low.section[nid]
        if not sec:
            item_of[nid] = nid
            continue
        last = members[sec][-1]
        m = _BLOCK.match(sec)
        block_of_item[last] = (int(m.group(1)), int(m.group(2)))
        item_of[nid] = last
    items: list[Node] = []
    for nid in low.order:
        if item_of[nid] != nid or low.nodes[nid].op == "input" or (low.nodes[nid].op == "output"
                                                                    and not low.nodes[nid].expr):
            continue
        n = low.nodes[nid]
        if nid in block_of_item:
            sec = low.section[nid]
            srcs = sorted({item_of[s] for x in members[sec] for s in low.nodes[x].inputs if low.section[s] != sec})
            n = Node(nid, "block", sec, srcs, n.users, n.layout, n.shape)
        items.append(Node(n.nid, n.op, n.path, [item_of[s] for s in n.inputs], sorted({item_of[u] for u in n.users}),
                          n.layout, n.shape, n.call, n.expr))

    def call_of(n: Node) -> str:
        if n.nid in block_of_item:
            i, j = block_of_item[n.nid]
            return f"self.stages[{i}].blocks[{j}]"
        return _access(n.path.split("."), tree)

    # the IR's input node feeds the first item: it reads `x`
    def source(nid: int) -> int:  # a returned value, before the permute or reshape that makes it a NCHW map
        while low.nodes[nid].op in ("permute", "tomap", "tap"):
            nid = low.nodes[nid].inputs[0]
        return nid

    inside = [s for n in items if n.op == "output" for s in map(source, low.nodes[n.nid].inputs)
              if low.section[s] and s != members[low.section[s]][-1]]
    if inside:
        raise ExportError(f"the tap on `{low.nodes[inside[0]].path or low.section[inside[0]]}` sits inside the block "
                          f"`{low.section[inside[0]]}`, which the file writes as one class; tap a block's or a "
                          "stage's end (`stages.I.blocks.J`, `stages.I`) to export, or make it the last tap of a "
                          "features build (`--features`: the build, and that block's class, end there), or export "
                          "to .onnx, which takes any tap")
    names, tap_vars = _tap_names(items, low)
    body = forward_lines(items, call_of, False, names=names)
    returns = next((n.expr for n in items if n.op == "output"), "")
    body = _collapse(_loops(body, low.depths), _sequentials(tree))
    net_class = _class_name(net.name, {c.__name__ for c in classes} | {bc.name for bc in bcs})
    init_lines = []
    for key, child in tree.children.items():
        init_lines.append(f"        {_access([key], tree)} = {_text(child, '        ')}")
    init_lines.append("        self.stages = nn.ModuleList([")
    init_lines += stage_lines
    init_lines.append("        ])")
    # the order of `named_children` only matters for printing; state dict keys are paths
    # as archdsl.build does on CPU, so the values are its own
    channels_last = runs_channels_last(len(low.input_shape) == 3, classes)
    shape = "x".join(map(str, low.input_shape))
    imports, sources = _sources(sorted((c for c in classes if not c.__module__.startswith("torch")),
                                       key=lambda c: c.__name__))
    title = _docstring_safe(f"{net.name}: written by `archdsl export` from {net.path}.")
    out = [f'"""{title}',
           "",
           *_what_it_returns(low, net, tap_vars),
           "state dict loads here as it is. Layers start with PyTorch's default initialisation; the",
           f'spec\'s own (`init {net.init.scheme}{" " + str(net.init.arg) if net.init.arg else ""}`) is applied by archdsl.build.',
           '"""',
           "import torch",
           "from torch import nn", *imports, "", ""]
    for src in sources:
        out += [src, "", ""]
    out += ["class Stage(nn.Module):",
            '    """The blocks of one stage, run in order."""', "",
            "    def __init__(self, blocks: list[nn.Module]):",
            "        super().__init__()",
            "        self.blocks = nn.ModuleList(blocks)", "", "", ]
    for text in block_texts:
        out += [text, "", ""]
    out += [f"class {net_class}(nn.Module):",
            f'    """`network {_docstring_safe(net.name)}`' + (
                f' as a backbone (no head): input {shape}, returns the maps of {len(low.taps)} taps."""'
                if low.features else f': input {shape}, {net.classes} classes' +
                (f', and {len(low.taps)} taps beside them."""' if low.taps else '."""')), "",
            "    def __init__(self):", "        super().__init__()", *init_lines, "",
            f"    def forward(self, x: torch.Tensor){_returns(returns)}:  # (B, {', '.join(map(str, low.input_shape))})",
            *_forward_doc(low, tap_vars),
            *([f"        x = x.contiguous(memory_format=torch.channels_last)  # {CHANNELS_LAST_WHY}"]
              if channels_last else []),
            *[f"        {line}" for line in body], *([] if returns else ["        return x"]), "", "",
            f"def build() -> {net_class}:",
            f"    return {net_class}(){'.to(memory_format=torch.channels_last)' if channels_last else ''}", "", "",
            'if __name__ == "__main__":',
            "    model = build().eval()",
            f"    print({_printed(returns, 'model(torch.randn(1, ' + ', '.join(map(str, low.input_shape)) + '))')})", ""]
    return "\n".join(out)


def _tap_var(name: str, taken: set[str]) -> str:
    """The variable a returned tap is kept in: its name as an identifier (`stages.1` ->
    `stages_1`), `tap_`-prefixed where that is a keyword or a name the forward uses."""
    var = re.sub(r"\W", "_", name, flags=re.ASCII)
    if not var or not var[0].isalpha() or keyword.iskeyword(var) or var in TAKEN | {"x", "self", "block"} \
            or var.startswith("shortcut"):
        var = f"tap_{var}"
    while var in taken:
        var += "_"
    taken.add(var)
    return var


def _tap_names(items: list[Node], low: Lowered) -> tuple[dict[tuple[int, int], str], list[str]]:
    """(source, reader) -> variable, for the edges carrying each returned tap to the output:
    the output's input and, back past the permute or reshape that makes it a NCHW map, the
    value it forks from; and the variables, in the taps' order."""
    out = next((n for n in items if n.op == "output" and n.expr), None)
    if out is None or not low.taps:
        return {}, []
    by_id = {n.nid: n for n in items}
    first = 0 if low.features else 1  # a full build returns its output first
    names: dict[tuple[int, int], str] = {}
    taken: set[str] = set()
    if not low.features:
        names[(out.inputs[0], out.nid)] = "output"
        taken.add("output")
    for k, tap in enumerate(low.taps):
        var = _tap_var(tap["module"], taken)
        reader, src = out.nid, out.inputs[first + k]
        names[(src, reader)] = var
        while by_id[src].op in ("permute", "tomap"):
            reader, src = src, by_id[src].inputs[0]
            names.setdefault((src, reader), var)
    return names, [names[(out.inputs[first + k], out.nid)] for k in range(len(low.taps))]


def _tap_lines(low: Lowered, tap_vars: list[str], indent: str) -> list[str]:
    """One line per returned tap: its variable, its place, and what it is."""
    width = max(len(v) for v in tap_vars)
    lines = []
    for var, tap in zip(tap_vars, low.taps):
        shape = tap["shape"]
        what = (f"(B, {', '.join(map(str, shape))}), reduction {tap['reduction']}" if len(shape) == 3 and tap["reduction"]
                else f"({', '.join(['B', *map(str, shape)])}), as it is (no map)")
        lines.append(f"{indent}{var.ljust(width)}  `{_docstring_safe(tap['module'])}`: {what}")
    return lines


def _what_it_returns(low: Lowered, net, tap_vars: list[str]) -> list[str]:
    """The file docstring's first paragraph: the input, and what the forward returns."""
    shape = "x".join(map(str, low.input_shape))
    paths = "Module paths are those of `archdsl.build`, so its"
    if not low.taps:
        return [f"Input {shape}, {net.classes} classes. {paths}"]
    if low.features:
        head = [f"Input {shape}. A backbone: no head; the forward returns a list of {len(low.taps)} feature maps "
                "(B, C, H, W),", "the taps of `archdsl.build(..., features=True)` (its `feature_info`), in order:"]
    else:
        head = [f"Input {shape}, {net.classes} classes. The forward returns (output, [taps]), the taps of",
                "`archdsl.build(..., taps=[...])` (its `feature_info`), in order:"]
    return [*head, *_tap_lines(low, tap_vars, "    "), "", paths]


def _forward_doc(low: Lowered, tap_vars: list[str]) -> list[str]:
    if not low.taps:
        return []
    first = (f'        """Returns [{", ".join(tap_vars)}], NCHW maps:' if low.features else
             f'        """Returns (output, [{", ".join(tap_vars)}]):')
    return [first, *_tap_lines(low, tap_vars, "            "), '        """']


def _returns(returns: str) -> str:
    return (" -> list[torch.Tensor]" if returns.startswith("return [") else
            " -> tuple[torch.Tensor, list[torch.Tensor]]" if returns else " -> torch.Tensor")


def _printed(returns: str, call: str) -> str:
    return (f"[f.shape for f in {call}]" if returns.startswith("return [") else
            f"{call}[0].shape" if returns else f"{call}.shape")


def _loops(lines: list[str], depths: list[int]) -> list[str]:
    """Runs of `x = self.stages[i].blocks[j](x)` over a whole stage (`depths[i]` blocks built),
    j = 0, 1, ..., become a loop."""
    out: list[str] = []
    k = 0
    pat = re.compile(r"x = self\.stages\[(\d+)\]\.blocks\[(\d+)\]\(x\)(  # .*)?$")
    while k < len(lines):
        m = pat.match(lines[k])
        if m and m.group(2) == "0":
            i, depth = int(m.group(1)), depths[int(m.group(1))]
            run = lines[k:k + depth]
            if len(run) == depth and all((mm := pat.match(line)) and mm.group(1) == str(i) and mm.group(2) == str(j)
                                         for j, line in enumerate(run)):
                out += [f"for block in self.stages[{i}].blocks:{run[-1][run[-1].find('  #'):] if '  #' in run[-1] else ''}",
                        "    x = block(x)"]
                k += depth
                continue
        out.append(lines[k])
        k += 1
    return out


def _docstring_safe(text: str) -> str:
    """Text that reads as itself inside a triple-quoted docstring (backslashes, quotes)."""
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


TAKEN = {"F", "nn", "torch", "Stage"}  # names the file itself defines or imports


def _class_name(name: str, defined: set[str] = frozenset()) -> str:
    """The network's class: `convnext_t` -> ConvnextT; a keyword (`none` -> None), a name the
    file already uses (`f` -> F, torch.nn.functional) or one of the classes it `defined` (a
    copied `Linear`, a block's `ConvnextBlock`) gains `Net` until it is free."""
    cls = "".join(part.capitalize() for part in re.split(r"\W|_", name, flags=re.ASCII) if part) or "Network"
    cls = cls if cls[0].isalpha() else f"Net{cls}"
    while keyword.iskeyword(cls) or cls in TAKEN or cls in defined:
        cls += "Net"
    return cls
