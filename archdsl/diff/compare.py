"""A semantic diff of two resolved networks, never of their text.

    d = archdsl.diff("step05", "step06")
    bool(d)          # False when the networks are the same
    print(d)         # what `archdsl diff` prints (plain)
    d.summary()      # one line: "widths 384,768,1536,3072 -> 96,192,384,768; conv1 0.25x -> pwconv 4x; ..."
    d.to_json()      # the `DiffModel` schema, which `Diff.from_json` reads back

Section by section (stem, stages, blocks, downsample, head, taps, init, train); a block is
compared with the block that runs in the same stages of the other network, whatever its
name; then the cost of both (params, MACs, peak activation).
"""
from __future__ import annotations

import re
from collections import Counter

from ..api import SpecLike, as_network, check
from .model import Change, Cost, DiffModel, SpecRef
from ..lang.errors import ArchError, ErrorCollector
from ..lang.network import Network
from .opdiff import Fact, Facts, SeqDiff, views
from ..lang.recipe import TrainRecipe
from ..report import report_from_ir

_BLOCK_PATH = re.compile(r"stages\.(\d+)\.blocks\.(\d+)\.")
_DOWNSAMPLE_PATH = re.compile(r"downsample\.(\d+)\.")


def facts_of(ir) -> Facts:
    """For every op of the spec (by its span), what it resolved to in each stage it runs in
    (the stem and head are context 0). A block op's stride is its first block's, where the
    stage may downsample; its channels are its last block's, the stage's steady state."""
    out: Facts = {}
    for _, d in ir.op_nodes():
        block = _BLOCK_PATH.match(d["path"])
        m = block or _DOWNSAMPLE_PATH.match(d["path"])
        if m is None and not d["path"].startswith(("stem.", "head.")):
            continue
        context = int(m.group(1)) if m else 0
        a, meta = d["attrs"], d["meta"]
        in_ch, out_ch = meta["in_shape"][0], meta["shape"][0]
        groups = {"conv": a.groups or 1, "dwconv": in_ch, "pwconv": 1}.get(d["op"])
        first = out.setdefault(d["span"], {}).get(context)
        stride = first.stride if first is not None and block and block.group(2) != "0" else a.stride
        out[d["span"]][context] = Fact(in_ch, out_ch, stride, groups)
    return out


class Checked:
    """One network, checked, with its facts and its cost: one side of a diff. Build it once
    to compare a network with several others (as `archdsl roadmap` does)."""

    def __init__(self, spec: SpecLike, **overrides):
        self.net: Network = as_network(spec, **overrides)
        _, ir = check(self.net)
        self.facts = facts_of(ir)
        report = report_from_ir(self.net, ir)
        self.cost = Cost(params=report.params, macs=report.macs, peak_activation=report.peak_activation)


def _ints(values) -> str:
    return ",".join(map(str, values))


def _ranges(stages: list[int]) -> str:
    """0-based stage indices as `stages 1-4` or `stage 2`."""
    n = [s + 1 for s in stages]
    if len(n) == 1:
        return f"stage {n[0]}"
    if n == list(range(n[0], n[-1] + 1)):
        return f"stages {n[0]}-{n[-1]}"
    return "stages " + ",".join(map(str, n))


def _stages(a: Network, b: Network) -> list[Change]:
    out = []
    if len(a.stages) != len(b.stages):
        out.append(Change(section="stages", kind="changed", where="", what="stages",
                          before=str(len(a.stages)), after=str(len(b.stages))))
    for what, get in (("depths", lambda s: s.depth), ("widths", lambda s: s.width),
                      ("strides", lambda s: s.stride)):
        va, vb = [get(s) for s in a.stages], [get(s) for s in b.stages]
        if va != vb:
            out.append(Change(section="stages", kind="changed", where="", what=what,
                              before=_ints(va), after=_ints(vb)))
    return out


def _blocks(a: Checked, b: Checked) -> list[Change]:
    """Each stage's block against the other network's block for the same stage."""
    pairs: dict[tuple[str, str], list[int]] = {}
    for i in range(min(len(a.net.stages), len(b.net.stages))):
        pairs.setdefault((a.net.stages[i].block, b.net.stages[i].block), []).append(i)
    many = len(pairs) > 1
    seq = SeqDiff("blocks")
    for (name_a, name_b), stages in pairs.items():
        where = f"block `{name_b}`" + (f" ({_ranges(stages)})" if many else "")
        if name_a != name_b:
            seq.add("renamed", _ranges(stages), "block", before=name_a, after=name_b)
        ctx = tuple(stages)
        va, vb = ({i: n.stages[i].values for i in stages} for n in (a.net, b.net))
        seq.compare(views(a.net.blocks[name_a].body, a.facts, ctx, va),
                    views(b.net.blocks[name_b].body, b.facts, ctx, vb), where)
    seq.pair_replacements()
    return seq.changes


def _sequence(section: str, a: Checked, b: Checked) -> list[Change]:
    ops_a, ops_b = getattr(a.net, section), getattr(b.net, section)
    if section == "downsample" and (not ops_a) != (not ops_b):
        text = ", ".join(" ".join([o.name.text, *(w.text for w in o.args)]) for o in (ops_a or ops_b))
        kind = "added" if ops_b else "removed"
        return [Change(section=section, kind=kind, where="between stages", what="downsample",
                       before=None if ops_b else text, after=text if ops_b else None)]
    seq = SeqDiff(section)
    seq.compare(views(ops_a, a.facts), views(ops_b, b.facts), "")
    return seq.changes


def _show(value) -> str:
    if value is None:
        return "off"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return " ".join(_show(v) for v in value) if value else "none"
    return str(value)


def _train(a: TrainRecipe, b: TrainRecipe) -> list[Change]:
    da, db = a.model_dump(), b.model_dump()
    return [Change(section="train", kind="changed", where="", what=k, before=_show(da[k]), after=_show(db[k]))
            for k in da if da[k] != db[k]]


def _scalars(a: Network, b: Network) -> list[Change]:
    out = []
    if a.input != b.input:
        out.append(Change(section="input", kind="changed", where="", what="input",
                          before="x".join(map(str, a.input)), after="x".join(map(str, b.input))))
    if a.classes != b.classes:
        out.append(Change(section="classes", kind="changed", where="", what="classes",
                          before=str(a.classes), after=str(b.classes)))
    ta, tb = (", ".join(w.text for w in n.taps) or "none" for n in (a, b))
    if ta != tb:
        out.append(Change(section="taps", kind="changed", where="", what="taps", before=ta, after=tb))
    ia, ib = (" ".join(filter(None, (n.init.scheme, n.init.arg))) for n in (a, b))
    if ia != ib:
        out.append(Change(section="init", kind="changed", where="", what="init", before=ia, after=ib))
    return out


def compare(a: SpecLike, b: SpecLike, **overrides) -> DiffModel:
    """Check both networks (reporting every error of either) and compare them."""
    errors = ErrorCollector()
    sides = []
    for spec in (a, b):
        try:
            sides.append(Checked(spec, **overrides))
        except ArchError as e:
            errors.add(e)
    errors.raise_if_any()
    return compare_checked(*sides)


def compare_checked(sa: Checked, sb: Checked) -> DiffModel:
    changes = [c for c in _scalars(sa.net, sb.net) if c.section in ("input", "classes")]
    changes += _sequence("stem", sa, sb) + _stages(sa.net, sb.net) + _blocks(sa, sb)
    changes += _sequence("downsample", sa, sb) + _sequence("head", sa, sb)
    changes += [c for c in _scalars(sa.net, sb.net) if c.section in ("taps", "init")] + _train(sa.net.train,
                                                                                             sb.net.train)
    return DiffModel(before=SpecRef(name=sa.net.name, path=sa.net.path),
                     after=SpecRef(name=sb.net.name, path=sb.net.path),
                     changes=tuple(changes), cost_before=sa.cost, cost_after=sb.cost)


class Diff:
    """The difference between two networks: falsy when there is none; prints as the CLI does."""

    def __init__(self, model: DiffModel):
        self.model = model

    @property
    def changes(self) -> tuple[Change, ...]:
        return self.model.changes

    def __bool__(self) -> bool:
        return bool(self.model.changes)

    def __eq__(self, other) -> bool:
        return isinstance(other, Diff) and other.model == self.model

    def __rich__(self):
        from .render import renderable

        return renderable(self.model)

    def __str__(self) -> str:
        from .render import plain

        return plain(self.model)

    def __repr__(self) -> str:
        from ..lang.views import SCREEN_COLUMNS, screen
        from .render import plain

        return screen(plain(self.model, width=SCREEN_COLUMNS).rstrip("\n").split("\n"))

    def _repr_html_(self) -> str:
        from .render import html

        return html(self.model)

    def summary(self, limit: int | None = None) -> str:
        """The change in one line, the weightiest parts first (see `diff_render.phrases`)."""
        from .render import summary

        return summary(self.model, limit)

    def to_json(self, indent: int | None = 2) -> str:
        return self.model.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str) -> "Diff":
        """The Diff `to_json` wrote; anything else is E905, as `Patch.from_json` answers."""
        from pydantic import ValidationError

        from ..lang.patch import PatchError

        try:
            return cls(DiffModel.model_validate_json(text))
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(map(str, first["loc"]))
            raise PatchError(f"not a diff: {first['msg']}" + (f" at `{where}`" if where else ""),
                             hint="read back what `archdsl diff --json` or `Diff.to_json()` wrote",
                             code="E905") from None

    def counts(self) -> Counter:
        return Counter(c.kind for c in self.changes)


def diff(a: SpecLike, b: SpecLike, **overrides) -> Diff:
    """The semantic diff of two specs (names, paths or `Network`s); overrides apply to both."""
    return Diff(compare(a, b, **overrides))
