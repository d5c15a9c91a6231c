"""Aligning two op sequences (a block body, a stem, a head) into added, removed, changed and
moved ops, named by where they sit.

Ops are grouped into units the way one writes them: an op that computes (a conv, a pool, a
linear) with the norms, activations and scales after it, e.g. `dwconv3 stride, bn, relu`;
a `residual { }` is a unit too, with the ops after its add. Units are aligned by their
leading op (a longest common subsequence); an unmatched unit that reappears elsewhere has
moved; the rest pair up by kind (a conv with a conv) and are compared op by op.

Two ops are the same when they say the same thing (`conv1` is `pwconv`, `pwconv` is
`pwconv 1x`) or resolve to the same channels and strides where they run.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from compiler import ops as registry

from ..lang import ast
from .model import Change
from ..lang.errors import Span
from ..lang.to_ir import Context, in_width, lookup_op, read_arg


@dataclass(frozen=True)
class Fact:
    """What an op resolved to in one place it runs (stage i of a block, the stem, ...)."""

    in_ch: int
    out_ch: int
    stride: int
    groups: int | None


Facts = dict[Span, dict[int, Fact]]  # op span -> context (stage index) -> fact

_FORM_CTX = Context(dim=1, classes=1, stride=1)
_DEFAULT_WIDTH = {"dim": ("x", 1.0), "classes": ("classes",), "keep": ("keep",)}
_RESOLVED = {"width": "out_ch", "stride": "stride", "groups": "groups"}


@dataclass
class OpView:
    """One op: its canonical word, its written arguments (defaults filled in) and the facts
    of every place it runs."""

    op: ast.Op
    word: str
    kernel: int | None
    forms: dict
    facts: dict[int, Fact]

    @property
    def text(self) -> str:
        return " ".join([self.op.name.text, *(w.text for w in self.op.args)])

    @property
    def family(self) -> str:
        return registry.REGISTRY[self.word].family if self.word in registry.REGISTRY else self.word

    @property
    def kind(self) -> str:
        """The family, with convs split into 1x1 and spatial ones."""
        if self.family == "conv":
            return "conv1x1" if self.word == "pwconv" or self.kernel == 1 else "convKxK"
        return self.family

    @property
    def role(self) -> str:
        """What the op does in a block: a spatial KxK conv and attention both mix across
        positions (the paper's dwconv7 against Swin's 7x7 window attention)."""
        return "spatial mixer" if self.kind in ("convKxK", "attn") else self.kind

    @property
    def is_head(self) -> bool:
        return self.family in ("conv", "linear", "pool", "attn")  # ops that compute; norms and acts follow them

    def resolved(self, key: str) -> tuple | None:
        if key not in _RESOLVED or not self.facts:
            return None
        return tuple(getattr(self.facts[c], _RESOLVED[key]) for c in sorted(self.facts))

    def channels_in(self) -> tuple[int, ...]:
        return tuple(self.facts[c].in_ch for c in sorted(self.facts))


@dataclass
class ResidualView:
    body: list
    shortcut: list | None
    text: str = "residual { ... }"
    word: str = "residual"
    family: str = "residual"
    kind: str = "residual"
    optional: bool = False  # `shortcut none`


@dataclass
class GateView:
    """`gate { ... }` (and `concat { }`, `subtract { }`, by their `word`): compared like a
    residual, its body op by op; added or removed whole."""

    body: list
    text: str = "gate { ... }"
    word: str = "gate"
    family: str = "gate"
    kind: str = "gate"


def _op_text(op: ast.Op) -> str:
    return " ".join([op.name.text, *(w.text for w in op.args)])


def _lookup(op: ast.Op) -> tuple[registry.OpDef, int | str | None]:
    """`lookup_op`, and `dwconvk` (a kernel op whose kernel is a per-stage value `k`)."""
    try:
        return lookup_op(op.name)
    except Exception:
        text = op.name.text
        for name, opdef in registry.REGISTRY.items():
            if opdef.kernel and text.startswith(name) and text[len(name):].isidentifier():
                return opdef, text[len(name):]
        raise


def _by_stage(name: str, values: dict | None, contexts) -> str:
    """` (t = 1,6,6 by stage)`: what a per-stage value is where the op runs."""
    if not values:
        return ""
    got = [values[c].get(name) for c in sorted(values) if contexts is None or c in contexts]
    got = [f"{v:g}" for v in got if v is not None]
    if not got:
        return ""
    return f" ({name} = {got[0]})" if len(set(got)) == 1 else f" ({name} = {','.join(got)} by stage)"


def op_view(op: ast.Op, facts: Facts, contexts: tuple[int, ...] | None, values: dict | None = None) -> OpView:
    """`values`: the stage values (`t=6`) by context, to say what `tx` and `dwconvk` are."""
    opdef, kernel = _lookup(op)
    if isinstance(kernel, str):
        kernel += _by_stage(kernel, values, contexts)
    forms: dict = {kind: None for kind in registry.ARG_KINDS}
    forms.update({"width": _DEFAULT_WIDTH.get(opdef.width_default, ("keep",)), "stride": 1,
                  "groups": "channels" if opdef.name == "dwconv" else 1})
    factor, taken = in_width(op)
    args = [w for i, w in enumerate(op.args) if i not in taken]
    if taken:  # `6x in`, `tx in`, `in`: of the block's input
        text = " ".join(op.args[i].text for i in sorted(taken) if op.args[i].text != "in") or "1x"
        forms["width"] = ("in", text + _by_stage(text.split("x")[0], values, contexts) if "x" in text else text)
    for w in args:
        if w.text == "stride":
            forms["stride"] = "block"
            continue
        if re.fullmatch(r"[A-Za-z_]\w*x", w.text) and w.text != "x":  # `tx`: a per-stage multiple
            forms["width"] = ("in" if taken else "x", w.text + _by_stage(w.text[:-1], values, contexts))
            continue
        if w.text == "in":
            continue
        if values and any(w.text in v for v in values.values()):  # `conv3 k`: a per-stage width
            forms["width"] = ("abs", w.text + _by_stage(w.text, values, contexts))
            continue
        kind, value = read_arg(w, _FORM_CTX)
        if kind == "width":
            value = ("x", float(value)) if isinstance(value, float) else ("abs", value)
        if kind == "group_width":
            kind, value = "groups", f"{value} per group"
        forms[kind] = value
    word = opdef.name
    if word == "conv" and kernel == 1 and forms["groups"] == 1:
        word, kernel = "pwconv", None  # the same 1x1 convolution
    where = facts.get(op.span, {})
    mine = {c: f for c, f in where.items() if contexts is None or c in contexts}
    return OpView(op, word, kernel, forms, mine)


def views(stmts, facts: Facts, contexts: tuple[int, ...] | None = None, values: dict | None = None) -> list:
    """Views of a body; the ops under `if` are taken as written (their facts say where they run).
    `values`: each context's per-stage values, to show what `tx` and `dwconvk` stand for."""
    out: list = []
    for s in stmts or ():
        if isinstance(s, ast.Residual):
            shortcut = views(s.shortcut, facts, contexts, values) if s.shortcut is not None else None
            out.append(ResidualView(views(s.body, facts, contexts, values), shortcut,
                                    optional=s.shortcut_none is not None))
        elif isinstance(s, (ast.Gate, ast.Join)):  # a join is compared as a gate is, by its keyword
            body = views(s.body, facts, contexts, values)
            kind = getattr(s, "kind", "gate")
            text = f"{kind} {{ " + ", ".join(_op_text(o) for o in s.body if isinstance(o, ast.Op)) + " }"
            out.append(GateView(body, text=text, word=kind, family=kind, kind=kind))
        elif isinstance(s, ast.Guard):
            out.extend(views(s.body, facts, contexts, values))
        else:
            out.append(op_view(s, facts, contexts, values))
    return out


def same_attr(a: OpView, b: OpView, key: str) -> bool:
    if a.forms[key] == b.forms[key]:
        return True
    ra, rb = a.resolved(key), b.resolved(key)
    return ra is not None and ra == rb


def same_op(a, b) -> bool:
    if isinstance(a, (ResidualView, GateView)) or isinstance(b, (ResidualView, GateView)):
        return type(a) is type(b) and a.word == b.word
    return a.word == b.word and a.kernel == b.kernel and all(same_attr(a, b, k) for k in a.forms)


@dataclass
class Unit:
    head: OpView | ResidualView | None
    tail: list[OpView] = field(default_factory=list)

    @property
    def ops(self) -> list:
        return ([self.head] if self.head is not None else []) + self.tail

    @property
    def text(self) -> str:
        return ", ".join(o.text for o in self.ops)

    @property
    def family(self) -> str:
        return self.ops[0].family

    @property
    def kind(self) -> str:
        return self.ops[0].kind

    @property
    def word(self) -> str:
        return self.ops[0].word

    @property
    def role(self) -> str:
        return getattr(self.ops[0], "role", self.kind)


def units(items: list) -> list[Unit]:
    out: list[Unit] = []
    for it in items:
        if isinstance(it, (ResidualView, GateView)) or it.is_head:
            out.append(Unit(it))
        elif not out:
            out.append(Unit(None, [it]))
        else:
            out[-1].tail.append(it)
    return out


def _same_head(u: Unit, v: Unit) -> bool:
    if u.head is None or v.head is None:
        return u.head is None and v.head is None
    return same_op(u.head, v.head)


def lcs(a: list, b: list, eq) -> list[tuple[int, int]]:
    """Index pairs of a longest common subsequence. On ties it keeps the earlier items of `a`,
    so of two swapped items the one that went earlier is the one that moved."""
    n, m = len(a), len(b)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n):
        for j in range(m):
            table[i + 1][j + 1] = table[i][j] + 1 if eq(a[i], b[j]) else max(table[i][j + 1], table[i + 1][j])
    pairs, i, j = [], n, m
    while i and j:
        if eq(a[i - 1], b[j - 1]) and table[i][j] == table[i - 1][j - 1] + 1:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif table[i - 1][j] >= table[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def _pair(a_idx: list[int], b_idx: list[int], a: list, b: list) -> list[tuple[int, int, bool]]:
    """Pairs of items in one gap that are one item changed: first the same kind in order (a
    1x1 conv with a 1x1 conv), then the same kind out of order, then the same family in order
    (a 1x1 conv with a 3x3). Each pair says whether it moved up past others."""
    pairs: list[tuple[int, int]] = []

    def match(same, in_order: bool) -> None:
        for i in a_idx:
            if any(p[0] == i for p in pairs):
                continue
            free = [j for j in b_idx if all(p[1] != j for p in pairs)]
            for j in free:
                crossing = any((i2 - i) * (j2 - j) < 0 for i2, j2 in pairs)
                if same(a[i], b[j]) and not (in_order and crossing):
                    pairs.append((i, j))
                    break

    match(lambda x, y: x.kind == y.kind, True)
    match(lambda x, y: x.kind == y.kind, False)
    match(lambda x, y: x.role == y.role == "spatial mixer", True)
    match(lambda x, y: x.family == y.family, True)

    def went_earlier(i: int, j: int) -> bool:  # of two swapped items, the one that went up moved
        return sum(j2 < j for _, j2 in pairs) < sum(i2 < i for i2, _ in pairs)

    return [(i, j, went_earlier(i, j)) for i, j in pairs]


def _gaps(anchors: list[tuple[int, int]], n: int, m: int):
    """The stretches of `a` and `b` between consecutive anchors."""
    prev = (-1, -1)
    for ai, bi in anchors + [(n, m)]:
        yield list(range(prev[0] + 1, ai)), list(range(prev[1] + 1, bi))
        prev = (ai, bi)


def _channels(values: tuple[int, ...]) -> str:
    return str(values[0]) if len(set(values)) == 1 else ",".join(map(str, values))


def _width_form(form: tuple) -> str:
    if form[0] == "x":
        return f"{form[1]:g}x" if isinstance(form[1], float) else form[1]
    if form[0] == "in":
        text, _, by_stage = form[1].partition(" (")
        return f"{text} of the block's input" + (f" ({by_stage}" if by_stage else "")
    return {"classes": "classes", "keep": "its input's"}.get(form[0], str(form[-1]))


def _stride_form(v: OpView) -> str:
    if v.forms["stride"] == "block":
        strides = v.resolved("stride")
        return "the block's" + (f" ({_channels(strides)} by stage)" if strides else "")
    return str(v.forms["stride"])


def describe(a: OpView, b: OpView) -> list[str]:
    """What differs between two ops paired as one op changed."""
    out = []
    if a.kernel != b.kernel and a.kernel and b.kernel:
        out.append(f"kernel {a.kernel} -> {b.kernel}")
    if not same_attr(a, b, "width"):
        text = f"width {_width_form(a.forms['width'])} -> {_width_form(b.forms['width'])}"
        ra, rb = a.resolved("width"), b.resolved("width")
        if ra and rb and (a.forms["width"][0] != "abs" or b.forms["width"][0] != "abs"):
            text += f": {_channels(ra)} -> {_channels(rb)} channels"
        out.append(text)
    if not same_attr(a, b, "stride"):
        out.append(f"stride {_stride_form(a)} -> {_stride_form(b)}")
    if a.family == b.family == "conv" and not same_attr(a, b, "groups"):
        def groups(v: OpView) -> str:
            g = v.resolved("groups")
            text = _channels(g) if g else str(v.forms["groups"])
            return text + (" (depthwise)" if v.word == "dwconv" else "")
        out.append(f"groups {groups(a)} -> {groups(b)}")
    keys = ("bias", "value", "eps", "heads", "headdim", "shift")
    if a.role == b.role == "spatial mixer" and a.family != b.family:
        out.append(f"spatial mixer: {_mixer(a)} -> {_mixer(b)}")  # says heads and shift too
        keys = keys[:3]
    for key in keys:
        if a.forms[key] != b.forms[key]:
            show = {None: "default", True: "on", False: "off"}
            fa, fb = (show.get(f, f) if not isinstance(f, float) else f"{f:g}" for f in (a.forms[key], b.forms[key]))
            out.append(f"{key} {fa} -> {fb}")
    return out


def _mixer(v: OpView) -> str:
    """How an op mixes across positions, in words: "7x7 depthwise conv", "7x7 window
    attention, 3,6,12,24 heads (shifted on odd blocks)"."""
    if v.family != "attn":
        return f"{v.kernel}x{v.kernel} " + ("depthwise conv" if v.word == "dwconv" else "conv")
    text = f"{v.kernel}x{v.kernel} window attention" if v.word == "wattn" else "global attention"
    if v.forms["headdim"] and v.facts:
        text += f", {_channels(tuple(c // v.forms['headdim'] for c in v.channels_in()))} heads"
    elif v.forms["heads"]:
        text += f", {v.forms['heads']} heads"
    return text + (" (shifted on odd blocks)" if v.forms["shift"] else "")


def _branches(items: list) -> list[ResidualView] | None:
    """The residual branches of a sequence made only of residuals without shortcuts."""
    if items and all(isinstance(it, ResidualView) and it.shortcut is None for it in items):
        return items
    return None


def _residuals_text(branches: list[ResidualView]) -> str:
    return ", ".join("residual { " + ", ".join(o.text if isinstance(o, OpView) else o.text for o in r.body) + " }"
                     for r in branches)


@dataclass
class SeqDiff:
    """Compares two op sequences of one section; `changes` collects what it finds."""

    section: str
    changes: list[Change] = field(default_factory=list)

    def add(self, kind: str, where: str, what: str, before=None, after=None, position=None, details=()):
        self.changes.append(Change(section=self.section, kind=kind, where=where, what=what, before=before,
                                   after=after, position=position, details=tuple(details)))

    def compare(self, a_items: list, b_items: list, where: str) -> None:
        ba, bb = _branches(a_items), _branches(b_items)
        if ba and bb and len(ba) != len(bb):  # e.g. one residual (ConvNeXt) against two (Swin, ViT)
            self.add("changed", where, "residual", before=_residuals_text(ba), after=_residuals_text(bb),
                     details=[f"{len(ba)} -> {len(bb)} residual joins; the ops compared across them"])
            return self.compare([o for r in ba for o in r.body], [o for r in bb for o in r.body],
                                f"{where}, residual branches" if where else "residual branches")
        a, b = units(a_items), units(b_items)
        anchors = lcs(a, b, _same_head)
        matched_a = {i for i, _ in anchors}
        matched_b = {j for _, j in anchors}
        moved = self._moves(a, b, anchors, matched_a, matched_b)
        events = [((j, 0), lambda i=i, j=j, pos=pos: self._moved(a[i], b[j], where, pos)) for i, j, pos in moved]
        events += [((j, 1), lambda i=i, j=j: self._unit(a[i], b[j], where)) for i, j, _ in moved]
        events += [((j, 1), lambda i=i, j=j: self._unit(a[i], b[j], where)) for i, j in anchors]
        removed, to_b = [], {i: j for i, j, _ in moved} | dict(anchors)
        for gap_a, gap_b in _gaps(anchors, len(a), len(b)):
            gap_a = [i for i in gap_a if i not in to_b]
            gap_b = [j for j in gap_b if j not in {m[1] for m in moved}]
            paired = _pair(gap_a, gap_b, a, b)
            to_b |= {i: j for i, j, _ in paired}
            events += [((j, 1), lambda i=i, j=j, c=crossed: self._unit(a[i], b[j], where, _went(b, j, c)))
                       for i, j, crossed in paired]
            removed += [i for i in gap_a if i not in to_b]
            events += [((j, 1), lambda j=j: self.add("added", where, b[j].word, after=b[j].text,
                                                     position=_place(b, j)))
                       for j in gap_b if j not in {p[1] for p in paired}]
        for i in removed:  # listed after the op that came before it
            prev = max((to_b[k] for k in to_b if k < i), default=-1)
            events.append(((prev + 0.5, i), lambda i=i: self.add("removed", where, a[i].word, before=a[i].text,
                                                                 position=_place(a, i))))
        for _, emit in sorted(events, key=lambda e: e[0]):
            emit()

    def pair_replacements(self) -> None:
        """One op added and one removed in the same block, where the registry says the one
        replaces the other (ConvNeXt V2's `grn` for V1's `layerscale`), read as one op replaced."""
        rescale = {n for n, o in registry.REGISTRY.items() if o.replaces} | {
            r for o in registry.REGISTRY.values() for r in o.replaces}
        by_where: dict[str, list[Change]] = {}
        for c in self.changes:
            if c.kind in ("added", "removed") and c.what in rescale:
                by_where.setdefault(c.where, []).append(c)
        for where, cs in by_where.items():
            added = [c for c in cs if c.kind == "added"]
            removed = [c for c in cs if c.kind == "removed"]
            if len(added) != 1 or len(removed) != 1 or added[0].what == removed[0].what:
                continue
            if removed[0].what not in registry.get(added[0].what).replaces:
                continue
            new, old = added[0], removed[0]
            k = self.changes.index(old)
            self.changes[k] = Change(section=self.section, kind="changed", where=where, what=new.what,
                                     before=old.before, after=new.after, position="instead",
                                     details=(f"`{new.after}` {new.position} replaces `{old.before}` {old.position}",))
            self.changes.remove(new)

    def _moves(self, a, b, anchors, matched_a, matched_b) -> list[tuple[int, int, str]]:
        """Unmatched units that reappear elsewhere, with where they went."""
        moved, taken = [], set()
        for i in (i for i in range(len(a)) if i not in matched_a):
            for j in (j for j in range(len(b)) if j not in matched_b and j not in taken):
                if a[i].head is not None and _same_head(a[i], b[j]):
                    taken.add(j)
                    earlier = sum(1 for _, bj in anchors if bj < j) < sum(1 for ai, _ in anchors if ai < i)
                    moved.append((i, j, _went(b, j, True, earlier)))
                    break
        return moved

    def _moved(self, u: Unit, v: Unit, where: str, position: str) -> None:
        details = []
        if isinstance(u.head, OpView) and u.head.facts and v.head.facts:
            ca, cb = u.head.channels_in(), v.head.channels_in()
            if ca != cb:
                details.append(f"it now sees {_channels(cb)} channels, not {_channels(ca)}")
        self.add("moved", where, v.word, before=u.text, after=v.text, position=position, details=details)

    def _unit(self, u: Unit, v: Unit, where: str, moved: str | None = None) -> None:
        """Two units paired as one: what changed inside (`moved`: where it went, if it crossed)."""
        if isinstance(u.head, ResidualView) and isinstance(v.head, ResidualView):
            self.compare(u.head.body, v.head.body, f"{where}, residual branch" if where else "residual branch")
            sc = f"{where}, shortcut" if where else "shortcut"
            if u.head.optional != v.head.optional:
                none, other = ("none (no residual where the shape changes)",
                               "used where the shape changes")
                self.add("changed", sc, "shortcut", before=none if u.head.optional else other,
                         after=none if v.head.optional else other)
            self.compare(u.head.shortcut or [], v.head.shortcut or [], sc)
        elif isinstance(u.head, GateView) and isinstance(v.head, GateView):
            self.compare(u.head.body, v.head.body, f"{where}, {v.head.word}" if where else v.head.word)
        elif isinstance(u.head, OpView) and isinstance(v.head, OpView) and not same_op(u.head, v.head):
            self.add("changed", where, v.head.word, before=u.head.text, after=v.head.text,
                     position=f"and moved {moved}" if moved else None, details=describe(u.head, v.head))
        ta, tb = u.tail, v.tail
        anchors = lcs(ta, tb, same_op)
        for gap_a, gap_b in _gaps(anchors, len(ta), len(tb)):
            paired = _pair(gap_a, gap_b, ta, tb)
            for i, j, _ in paired:
                self.add("changed", where, tb[j].word, before=ta[i].text, after=tb[j].text,
                         position=_after(v.ops, tb[j]), details=describe(ta[i], tb[j]))
            for i in gap_a:
                if i not in {p[0] for p in paired}:
                    self.add("removed", where, ta[i].word, before=ta[i].text, position=_after(u.ops, ta[i]))
            for j in gap_b:
                if j not in {p[1] for p in paired}:
                    self.add("added", where, tb[j].word, after=tb[j].text, position=_after(v.ops, tb[j]))


def _went(seq: list[Unit], j: int, crossed: bool, earlier: bool = True) -> str | None:
    """Where a unit that crossed others went: ahead of the one now after it, or after the one before."""
    if not crossed:
        return None
    if earlier and j + 1 < len(seq):
        return f"ahead of `{seq[j + 1].ops[0].text}`"
    return f"after `{seq[j - 1].ops[0].text}`" if j > 0 else "to the start"


def _after(ops: list, op) -> str:
    """Where an op sits in its unit: after the ops before it ("after `dwconv7 stride, bn`")."""
    k = next(i for i, o in enumerate(ops) if o is op)
    if k == 0:
        return "at the start"
    if isinstance(ops[0], ResidualView):
        return "after the residual add" + (f", `{', '.join(o.text for o in ops[1:k])}`" if k > 1 else "")
    return f"after `{', '.join(o.text for o in ops[:k])}`"


def _place(seq: list[Unit], k: int) -> str | None:
    """Where a unit added or removed sits in its sequence."""
    if k == 0:
        return "at the start" if len(seq) > 1 else None
    prev = seq[k - 1]
    if isinstance(prev.head, ResidualView) and not prev.tail:
        return "after the residual add"
    return f"after `{prev.ops[-1].text}`"
