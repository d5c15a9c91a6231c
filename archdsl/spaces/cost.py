"""What a point of a space costs (params, MACs, activations), fast and without torch.

    coster = Coster.open("regnetx_space")
    c = coster.cost({"w0": 24, "wa": 24.48, "wm": 2.54, "depth": 22, "gw": 16})
    c.params, c.macs

Costs come from the same analysis as `archdsl compile` (the compiler's shape and cost passes),
run on pieces of the network and remembered: a network is its segments (the stem and stage 1,
then each downsample with its stage, the head with the last), and a segment's cost depends only
on its words once the values are filled in, on the shape that enters it and on its depth; a
stage's blocks after the first are alike, so a segment costs c1 + (depth - 1) * (c2 - c1) from
its costs at depths 1 and 2 (both read off one analysis at depth 2, by module path). The first points of every space are also costed whole and
compared; a space whose pieces do not add up (a class token added in the stem and read in the
head) is costed whole, point by point."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import api
from ..lang import ast
from ..lang.errors import ArchError
from ..lang.network import Network
from ..lang.resolve import load_chain, merge, read_spec, resolve_chain, set_lines
from ..lang.space import Space, space_of
from ..lang.specpath import find_spec

_SECTIONS = ("input", "classes", "stem", "downsample", "stages", "head", "init", "train")
VERIFY = 3  # points costed both ways before the pieces are trusted


class _NotPiecewise(Exception):
    """A segment whose input is not an image: this space is costed whole."""


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int
    activations: int   # every op's output, per sample
    peak: int          # the largest op output, per sample

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.params + other.params, self.macs + other.macs, self.activations + other.activations,
                    max(self.peak, other.peak))

    def scaled(self, first: "Cost", depth: int) -> "Cost":
        """From this segment's cost at depth 2 and `first` at depth 1: its cost at `depth`."""
        k = depth - 1
        return Cost(first.params + k * (self.params - first.params), first.macs + k * (self.macs - first.macs),
                    first.activations + k * (self.activations - first.activations),
                    max(first.peak, self.peak) if depth > 1 else first.peak)


def _cost_of(rows) -> Cost:
    return Cost(sum(r.params for r in rows), sum(r.macs for r in rows), sum(r.act for r in rows),
                max((r.act for r in rows), default=0))


def analyze_segment(net: Network) -> tuple[Cost, Cost | None, tuple]:
    """A one-stage network's cost, and (where its stage has two blocks) its cost without the
    second block: its costs at depth 2 and depth 1 from one analysis."""
    report = api.analyze(net)
    out = report.layers[-1].shape if report.layers else tuple(net.input)
    whole = _cost_of(report.layers)
    if net.stages[0].depth == 1:
        return whole, None, tuple(out)
    first = _cost_of([r for r in report.layers if not r.path.startswith("stages.0.blocks.1.")])
    return first, whole, tuple(out)


def analyze_network(net: Network) -> tuple[Cost, tuple]:
    """The cost of a resolved network and its output shape, by the compiler's check passes."""
    report = api.analyze(net)
    out = report.layers[-1].shape if report.layers else tuple(net.input)
    return Cost(report.params, report.macs, report.activations, report.peak_activation), tuple(out)


class Coster:
    """Costs the points of one space (a spec with open values; also a plain spec, as one point)."""

    def __init__(self, chain: list[ast.SpecFile], overrides: dict | None = None):
        self.chain = chain
        self.overrides = dict(overrides or {})
        m = merge(chain)
        self.lines = set_lines(chain)
        self.sections = {f: m[f] for f in _SECTIONS if f in m}
        self.blocks = m["blocks"]
        self.space: Space | None = space_of(chain, list(self.sections.values()) + [self.blocks, self.lines])
        self.cache: dict[tuple, tuple[Cost, Cost | None, tuple]] = {}
        self.verified = 0
        given, rest = self.space.take(self.overrides) if self.space else ({}, self.overrides)
        self.fixed = given                      # open values given with --set
        # piecewise costing needs the words alone to decide the network: no network overrides (the
        # recipe's `train.*` do not change it) nor `set` lines
        shaping = [k for k in rest if not k.startswith("train.")]
        self.piecewise = not shaping and not self.lines and "stages" in self.sections
        self.segments = self._segments() if self.piecewise else []

    @classmethod
    def open(cls, spec: str | Path, overrides: dict | None = None) -> "Coster":
        return cls(load_chain(read_spec(find_spec(str(spec)))), overrides)

    @property
    def name(self) -> str:
        return self.chain[0].name.text

    @property
    def path(self) -> str:
        return self.chain[0].path

    # ---- points -----------------------------------------------------------------------------
    def bind(self, values: dict, drawn: bool = False) -> dict:
        """All values of the point (free and derived); SpaceError E174 when a constraint fails.
        `drawn`: the values come from this space's sampler (then they are not checked again)."""
        if self.space is None:
            return {}
        return self.space.bind({**values, **self.fixed}, drawn=drawn)

    def network(self, values: dict) -> Network:
        """The point as a resolved network (the slow, complete path: what `compile` does)."""
        return resolve_chain(self.chain, {**self.overrides, **values})

    def cost(self, values: dict, drawn: bool = False) -> Cost:
        """The point's cost. Raises the ArchError of a point that does not check (a constraint
        that fails, a width its groups do not divide), with the location in the file."""
        env = self.bind(values, drawn)
        if not self.piecewise or self.verified < VERIFY:
            whole, _ = analyze_network(self.network(values))
            if self.piecewise:
                try:
                    pieces = self._cost_pieces(values, env)
                except (ArchError, _NotPiecewise):
                    pieces = None
                if pieces != whole:
                    self.piecewise = False  # the pieces do not add up for this space: cost it whole
                else:
                    self.verified += 1
            return whole
        try:
            return self._cost_pieces(values, env)
        except _NotPiecewise:
            self.piecewise = False
            return self.cost(values)

    # ---- pieces -------------------------------------------------------------------------------
    def _segments(self) -> list[tuple[tuple[int, ...], int | str]]:
        """For each stage: the open words its segment reads but its depth (as indices into
        `self.words`, filled once per point), and its depth word (an index, or its text)."""
        self.words: list[tuple] = []   # (parts, span) of each open word
        index: dict[tuple, int] = {}

        def word_id(w: ast.Word) -> int:
            key = (w.text, w.span)
            if key not in index:
                index[key] = len(self.words)
                self.words.append((self.space.holes[key], w.span))
            return index[key]

        def opens(node) -> list[int]:
            from ..lang.space import is_open, walk_words
            found: list[ast.Word] = []
            walk_words(node, found)
            return [word_id(w) for w in found if is_open(w)]

        s = self.sections
        common = opens([s.get("input"), s.get("classes")])
        stages = s["stages"]
        out = []
        for i, st in enumerate(stages):
            parts = [s.get("stem") if i == 0 else s.get("downsample"), self.blocks.get(st.block.text),
                     st.width, st.block, st.args, s.get("head") if i == len(stages) - 1 else None]
            depth = word_id(st.depth) if self.space and (st.depth.text, st.depth.span) in self.space.holes \
                else st.depth.text
            out.append((tuple(common + opens(parts)), depth))
        return out

    def _cost_pieces(self, values: dict, env: dict) -> Cost:
        total: Cost | None = None
        shape: tuple | None = None
        net: Network | None = None
        fill = self.space.fill if self.space else None
        texts = [fill(parts, env, span) for parts, span in self.words]
        for i, (ids, depth_word) in enumerate(self.segments):
            key = (i, shape, tuple([texts[j] for j in ids]))
            depth_text = texts[depth_word] if isinstance(depth_word, int) else depth_word
            depth = int(depth_text[1:]) if depth_text[:1] == "x" and depth_text[1:].isdigit() else 0
            hit = self.cache.get(key)
            if hit is None or (depth > 1 and hit[1] is None):
                if net is None:
                    net = self.network(values)  # raises the point's own errors, with locations
                hit = analyze_segment(self._segment(net, i, shape, min(depth, 2)))
                self.cache[key] = hit
            c1, c2, out = hit
            if depth < 1:
                raise AssertionError("a resolved point has stages of depth at least 1")
            seg = c2.scaled(c1, depth) if depth > 1 else c1
            total = seg if total is None else total + seg
            shape = out
        assert total is not None
        return total

    def _segment(self, net: Network, i: int, shape: tuple | None, depth: int) -> Network:
        st = net.stages[i]
        last = i == len(net.stages) - 1
        if i > 0 and len(shape or ()) != 3:
            raise _NotPiecewise(i)
        return net.model_copy(update={
            "input": net.input if i == 0 else shape,
            "stem": net.stem if i == 0 else (net.downsample or ()), "downsample": None,
            "stages": (st.model_copy(update={"depth": depth}),), "head": net.head if last else ()})
