"""The IR: a networkx DiGraph of typed op nodes, in insertion order (which is topological).

Each node's data:
    op      registry name (`conv`, `ln`, ...) or a structural kind: `input`, `add`, `mul`,
            `cat`, `sub`, `output`, `permute`
    attrs   `Attrs`: the op's resolved arguments
    path    module path in the built model (`stages.2.blocks.5.dwconv`), '' for structural nodes
    group   the section it belongs to, for per-stage reports (`stem`, `stage 1`, `head`, ...)
    span    where it came from in the source (opaque to the compiler)
    meta    filled by passes: `in_shape`, `shape`, `layout`, `params`, `macs`, `act`
    width_of  (optional) `(node, factor)`: the width is `factor` x that node's channels (`0.25x in`),
            resolved into `attrs.out` by shape inference
Edges carry `index`, the argument position at the consumer (`add` has two inputs).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import networkx as nx

Shape = tuple[int, ...]  # (C, H, W) for a feature map, (C, N) for N tokens, (C,) for a vector


@dataclass(frozen=True)
class Attrs:
    out: int | None = None      # output channels / features; None keeps the input's
    kernel: int | None = None
    stride: int = 1
    groups: int | None = None  # None: the op's default (1 for convs, 32 for gn)
    bias: bool | None = None    # None: the op's default
    value: float | None = None  # layer-scale init, dropout p, drop-path rate, ...
    eps: float | None = None
    group_width: int | None = None  # `gwN`: groups = input channels / N (RegNet's group width)
    keepdim: bool = False       # `gap` inside a gate: keep a (C,1,1) map for the gate's 1x1 convs
    heads: int | None = None    # attention: the number of heads (`h6`) ...
    head_dim: int | None = None  # ... or the channels of one head (`d32`), heads = width / head_dim
    shift: bool = False         # window attention: shift the windows (on odd blocks of a stage)
    momentum: float | None = None  # BatchNorm's running-statistics momentum (`momentum=0.01`); None: 0.1
    padding: int | None = None  # `pN`: explicit padding of a conv or pool; None: K//2, or 0 when K == s

    def with_(self, **changes) -> "Attrs":
        return replace(self, **changes)


@dataclass
class Residual:
    """A residual join: `add(branch, shortcut(x) or x)`; the shortcut is kept only where the
    branch changes the shape (decided by shape inference)."""

    input: int
    branch_out: int
    shortcut: list[int]
    add: int
    span: Any = None
    optional: bool = False  # `shortcut none`: where the branch changes the shape, no residual at all


@dataclass
class Gate:
    """A gated branch: `mul(x, branch(x))`, the branch ending at x's channels (as a (C,1,1) map
    or x's own shape) so its output scales x (squeeze-and-excitation)."""

    input: int
    branch_out: int
    mul: int
    span: Any = None


@dataclass
class Join:
    """A join that keeps the block's input beside its branch: `cat(x, branch(x))` along the
    channels (kind `cat`, DenseNet), or `sub(branch(x), x)` (kind `sub`, PoolFormer's
    `pool(x) - x`). The structural node `node` has op `kind`."""

    kind: str
    input: int
    branch_out: int
    node: int
    span: Any = None


# Structural joins (nodes without a module) and their inputs: `add`/`sub` (branch, x),
# `mul` (x, branch), `cat` (x, branch).
JOIN_OPS = ("add", "mul", "cat", "sub")


@dataclass
class IRGraph:
    name: str = "network"
    input_shape: Shape = (3, 224, 224)
    g: nx.DiGraph = field(default_factory=nx.DiGraph)
    residuals: list[Residual] = field(default_factory=list)
    gates: list[Gate] = field(default_factory=list)
    joins: list[Join] = field(default_factory=list)
    _next: int = 0

    def add(self, op: str, inputs: list[int], attrs: Attrs = Attrs(), path: str = "",
            group: str = "", span: Any = None) -> int:
        nid = self._next
        self._next += 1
        self.g.add_node(nid, op=op, attrs=attrs, path=path, group=group, span=span, meta={})
        for i, src in enumerate(inputs):
            self.g.add_edge(src, nid, index=i)
        return nid

    def inputs(self, nid: int) -> list[int]:
        preds = [(self.g.edges[p, nid]["index"], p) for p in self.g.predecessors(nid)]
        return [p for _, p in sorted(preds)]

    def users(self, nid: int) -> list[int]:
        return sorted(self.g.successors(nid))

    def nodes(self) -> Iterator[tuple[int, dict]]:
        """Nodes in insertion order, which is a topological order."""
        for nid in sorted(self.g.nodes):
            yield nid, self.g.nodes[nid]

    def op_nodes(self) -> Iterator[tuple[int, dict]]:
        for nid, data in self.nodes():
            if data["path"]:
                yield nid, data

    def insert_before(self, nid: int, index: int, op: str, attrs: Attrs = Attrs(), group: str = "") -> int:
        """Insert a new node on the edge that feeds input `index` of `nid`."""
        src = self.inputs(nid)[index]
        new = self._next
        self._next += 1
        # `order` places the new node just before its consumer when ids are renumbered.
        self.g.add_node(new, op=op, attrs=attrs, path="", group=group or self.g.nodes[nid]["group"],
                        span=None, meta={}, order=nid - 0.5)
        self.g.remove_edge(src, nid)
        self.g.add_edge(src, new, index=0)
        self.g.add_edge(new, nid, index=index)
        return self._renumber()[new]

    def remove(self, nid: int) -> None:
        self.g.remove_node(nid)

    def _renumber(self) -> dict[int, int]:
        order = list(nx.lexicographical_topological_sort(self.g, key=lambda n: self.g.nodes[n].get("order", n)))
        for n in order:
            self.g.nodes[n].pop("order", None)
        mapping = {old: new for new, old in enumerate(order)}
        self.g = nx.relabel_nodes(self.g, mapping, copy=True)
        for r in self.residuals:
            r.input, r.branch_out, r.add = mapping[r.input], mapping[r.branch_out], mapping[r.add]
            r.shortcut = [mapping[s] for s in r.shortcut]
        for gate in self.gates:
            gate.input, gate.branch_out, gate.mul = (mapping[gate.input], mapping[gate.branch_out],
                                                     mapping[gate.mul])
        for j in self.joins:
            j.input, j.branch_out, j.node = mapping[j.input], mapping[j.branch_out], mapping[j.node]
        self._next = len(order)
        return mapping

    @property
    def output(self) -> int:
        return max(nid for nid, d in self.nodes() if d["op"] == "output")
