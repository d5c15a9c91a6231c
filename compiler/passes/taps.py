"""Pass (feature and intermediate builds): name outputs inside the network ("taps") and make
them what the built module returns.

A tap is named by where its value ends:
    stem                 the stem's output
    downsample.I         the output of the downsample layer in front of stage I
    stages.I             the end of stage I (0-based), its last block's output
    stages.I.blocks.J    the end of block J of stage I
    head                 the head's output (the logits)
    <module path>        the output of that op (`stages.2.blocks.5.dwconv`)

`select_taps(ir, taps, keep_head=False)` makes the output node return the taps in order
(a features build: everything after the last tap is cut, so the head's parameters are gone
from the counts), or the network's output and the taps (`keep_head=True`). A tap on a
sequence of tokens is turned back into its map: the tokens in front of the grid (a class
token) dropped, the rest reshaped row by row into the grid the `tokens` op flattened
(a `tomap` node); a value returned twice goes through a `tap` node, the identity. Every
map is returned NCHW (the layout pass puts the permutes).

Which sections exist is read off the module paths: the end of a section is the input of
the first op of the section after it."""
from __future__ import annotations

import re
from dataclasses import dataclass

import networkx as nx

from ..errors import CompileError
from ..ir import IRGraph

_SECTION = re.compile(r"(stem|head|downsample\.\d+|stages\.\d+\.blocks\.\d+)(\.|$)")


@dataclass(frozen=True)
class Tap:
    """One returned map: its name, the node it reads, and what `feature_info` reports."""

    name: str
    node: int
    channels: int
    reduction: int          # input height / map height (the stride from the input)
    shape: tuple[int, ...]  # (C, H, W) as returned; (C,) for the head's logits
    drop: int = 0           # tokens dropped in front of the grid (a class token); 0 for maps

    def as_dict(self) -> dict:
        return {"module": self.name, "num_chs": self.channels, "reduction": self.reduction,
                "shape": list(self.shape)}


def section_ends(ir: IRGraph) -> dict[str, int]:
    """Section name -> the node that ends it, in network order; stages (`stages.I`) included."""
    firsts: dict[str, int] = {}
    for nid, data in ir.op_nodes():
        m = _SECTION.match(data["path"])
        if m and m.group(1) not in firsts:
            firsts[m.group(1)] = nid
    names = list(firsts)
    ends: dict[str, int] = {}
    for name, nxt in zip(names, names[1:]):
        ends[name] = ir.inputs(firsts[nxt])[0]
    if names:
        ends[names[-1]] = ir.inputs(ir.output)[0]
    out: dict[str, int] = {}
    for name, nid in ends.items():
        out[name] = nid
        m = re.fullmatch(r"stages\.(\d+)\.blocks\.\d+", name)
        if m:
            out[f"stages.{m.group(1)}"] = nid  # the last block seen wins: the stage's end
    order = list(ends)  # stage names sit after their last block
    for name in [n for n in out if n not in ends]:
        last = max(i for i, e in enumerate(order) if e.startswith(name + "."))
        order.insert(last + 1, name)
    return {name: out[name] for name in order}


def stage_names(ir: IRGraph) -> list[str]:
    """The default taps: the end of every stage; of every block where there is one stage
    (ViT, isotropic ConvNeXt), as timm's ViT `out_indices` count blocks."""
    ends = section_ends(ir)
    stages = [n for n in ends if re.fullmatch(r"stages\.\d+", n)]
    if len(stages) == 1:
        return [n for n in ends if n.startswith("stages.0.blocks.")]
    return stages


def resolve(ir: IRGraph, names: list[str], maps: bool = True, spans: list | None = None,
            code: str = "E410") -> list[Tap]:
    """Taps for `names`, each checked: it names something, and (with `maps`) what it names is
    a map or a sequence of tokens with a grid (E412 otherwise: the head's output included, a
    features build returning maps only). Without `maps` a vector (the logits) or tokens with no
    grid are returned as they are. `spans`: where each name is written (a spec's
    `taps` statement); a name that names nothing, or a second time, is then an error `code`
    there, and one that is no map E412 there."""
    ends = section_ends(ir)
    paths = {d["path"]: nid for nid, d in ir.op_nodes()}
    at = list(spans) if spans is not None else [None] * len(names)
    taps, errors, first = [], [], {}
    for i, name in enumerate(names):
        if name in first:
            was = at[first[name]]
            errors.append(CompileError(code, f"the tap `{name}` is named twice", at[i],
                                       hint=f"name each tap once (first at line {was.line})" if was
                                       else "name each tap once"))
            continue
        first[name] = i
        nid = ends.get(name, paths.get(name))
        if nid is None:
            errors.append(CompileError(code, f"the tap `{name}` names nothing in {ir.name}", at[i],
                                       hint=_known(name, ends, paths)))
            continue
        try:
            taps.append(_tap(ir, name, nid, maps))
        except CompileError as e:
            e.span = at[i] or e.span  # a spec's own tap: the error is at the tap, as E413 is
            errors.append(e)
    if errors:
        from ..errors import CompileErrors

        raise CompileErrors(errors)
    return taps


def _known(name: str, ends: dict, paths: dict) -> str:
    import difflib

    stages = [n for n in ends if re.fullmatch(r"stages\.\d+", n)]
    places = (f"taps are `stem`, `stages.0`..`{stages[-1] if stages else 'stages.0'}`, `stages.I.blocks.J`, "
              "`downsample.I`, `head`, or an op's module path (`archdsl compile SPEC --emit layers` lists them)")
    block = re.fullmatch(r"(stages\.\d+)\.blocks\.(\d+)(\..+)?", name)
    blocks = [n for n in ends if block and re.fullmatch(re.escape(block.group(1)) + r"\.blocks\.\d+", n)]
    if blocks and int(block.group(2)) >= len(blocks):  # a stage shallower than the tap: its depth, not a typo
        stage, n = block.group(1), len(blocks)
        has = f"`{blocks[0]}` only" if n == 1 else f"`{blocks[0]}`..`{blocks[-1]}`"
        return (f"did you mean `{stage}` (the stage's end, which follows any depth) or `{blocks[-1]}` (its last "
                f"block)? `{stage}` has {n} block{'s' if n != 1 else ''} here ({has}): its depth is {n}, so "
                f"`{block.group(1)}.blocks.{block.group(2)}` is not built (a depth set lower, by `--set depths=...` "
                "or a spec's `set depths`, makes a tap on a deeper block name nothing)")
    close = difflib.get_close_matches(name, [*ends, *paths], n=2, cutoff=0.6)
    return ((f"did you mean {' or '.join(f'`{c}`' for c in close)}? " if close else "")
            + (f"`{block.group(1)}` has blocks `{blocks[0]}`..`{blocks[-1]}`; " if blocks else "") + places)


def _tap(ir: IRGraph, name: str, nid: int, maps: bool) -> Tap:
    shape = tuple(ir.g.nodes[nid]["meta"]["shape"])
    height = ir.input_shape[1] if len(ir.input_shape) == 3 else None
    if len(shape) == 3 and height:
        return Tap(name, nid, shape[0], height // shape[1], shape)
    if len(shape) == 2 and height:
        grid = token_grid(ir, nid)
        if grid is not None and 0 <= shape[1] - grid[0] * grid[1]:
            h, w = grid
            return Tap(name, nid, shape[0], height // h, (shape[0], h, w), shape[1] - h * w)
    if not maps:
        return Tap(name, nid, shape[0], 0, shape)
    what = f"a vector of {shape[0]}" if len(shape) == 1 else f"{shape[1]} tokens with no grid to map them onto" \
        if len(shape) == 2 else f"input {'x'.join(map(str, ir.input_shape))}"
    if nid == ir.inputs(ir.output)[0]:  # `head`, or the op giving the network's output
        raise CompileError("E412", f"`{name}` is not a spatial map: it is the network's output ({what}), and a "
                           "features build returns maps only", ir.g.nodes[nid]["span"],
                           hint="the logits come from a full build: taps without features "
                           "(`archdsl.build(spec, taps=[...])`, `--taps` without `--features`) returns "
                           "(logits, [maps]); a backbone's maps are its stages' ends (`stages.I`)")
    raise CompileError("E412", f"`{name}` is not a spatial map: it is {what}",
                       ir.g.nodes[nid]["span"],
                       hint="feature maps come from a network whose input is an image (CxHxW) and from "
                       "places before its pooling; tap a stage or block before `gap`/`clspool`/`flatten`")


def token_grid(ir: IRGraph, nid: int) -> tuple[int, int] | None:
    """The (H, W) of the map the tokens at `nid` were flattened from (the nearest `tokens`)."""
    for anc in sorted(nx.ancestors(ir.g, nid) | {nid}, reverse=True):
        data = ir.g.nodes[anc]
        if data["op"] == "tokens":
            _, h, w = data["meta"]["in_shape"]
            return h, w
    return None


def select_taps(ir: IRGraph, taps: list[Tap], keep_head: bool = False) -> None:
    """Rewire the output node to return `taps` (after the network's output when `keep_head`);
    without the head, every node no tap needs is removed."""
    out = ir.output
    final = ir.inputs(out)[0]
    sources = [final] if keep_head else []
    for tap in taps:
        src = tap.node
        if src in sources:  # one value returned twice (`head.fc` beside the logits): a graph has one edge
            src = ir.add("tap", [src], group=ir.g.nodes[src]["group"])
            ir.g.nodes[src]["meta"].update(in_shape=tap.shape, shape=tap.shape, params=0, macs=0, act=0)
        if tap.shape != tuple(ir.g.nodes[src]["meta"]["shape"]):  # tokens -> their map
            src = ir.add("tomap", [src], group=ir.g.nodes[src]["group"])
            ir.g.nodes[src].update(grid=tap.shape[1:], drop=tap.drop)
            ir.g.nodes[src]["meta"].update(in_shape=ir.g.nodes[tap.node]["meta"]["shape"], shape=tap.shape,
                                           params=0, macs=0, act=0)
        sources.append(src)
    for p in list(ir.g.predecessors(out)):
        ir.g.remove_edge(p, out)
    for i, src in enumerate(sources):
        ir.g.add_edge(src, out, index=i)
    ir.g.nodes[out]["returns"] = "both" if keep_head else "taps"
    ir.g.nodes[out]["taps"] = [t.name for t in taps]
    # the output node must come last in the insertion order: `tomap` nodes were added after it
    if any(n > out for n in ir.g.nodes):
        ir.g.nodes[out]["order"] = max(ir.g.nodes) + 0.5
        ir._renumber()
    if not keep_head:
        needed = nx.ancestors(ir.g, ir.output) | {ir.output}
        for nid in [n for n in ir.g.nodes if n not in needed]:
            ir.remove(nid)
        ir.residuals = [r for r in ir.residuals if r.add in ir.g]
        ir.gates = [g for g in ir.gates if g.mul in ir.g]


class FeatureInfo(list):
    """What a features build returns, one dict per map (`module`, `num_chs`, `reduction`,
    `shape`), with timm's accessors."""

    def channels(self) -> list[int]:
        return [d["num_chs"] for d in self]

    def reduction(self) -> list[int]:
        return [d["reduction"] for d in self]

    def module_name(self) -> list[str]:
        return [d["module"] for d in self]
