"""Shape inference and checks, before anything is allocated.

Writes `meta["in_shape"]` and `meta["shape"]` on every node, resolves widths relative to
another node (`0.25x in`), decides each residual's shortcut (kept only where the branch
changes the shape; removed otherwise; with `shortcut none` the whole residual is dropped
there), checks that gates end at their input's width, that a `concat { }` branch keeps the
map's size and a `subtract { }` branch its shape, and collects
every error it finds. A node downstream of an error is skipped, so one mistake is
reported once."""
from __future__ import annotations

import re

import networkx as nx

from .. import ops
from ..errors import CompileError, CompileErrors
from ..ir import IRGraph, Residual
from ..ops import fmt_shape


# Errors that depend on the shape flowing in: a line used many times (a block, `downsample`)
# may fail in only one use, so the message names it.
_DEPENDS_ON_INPUT = ("E401", "E402", "E407", "E409")
# No size (channels, height, width, kernel, groups) may exceed this: a typo such as
# `classes 99999999999999999999` must be an error here, not an overflow inside torch.
MAX_SIZE = 2**31 - 1


def _too_big(shape: tuple, attrs) -> CompileError | None:
    big = max((*shape, attrs.kernel or 0, attrs.groups or 0))
    if big <= MAX_SIZE:
        return None
    return CompileError("E404", f"a size of {big:,} is too large to build (the most is {MAX_SIZE:,})",
                        hint="check the widths, kernel sizes, `classes` and `input`")


def _decide_shortcut(ir: IRGraph, r: Residual, shapes: dict) -> CompileError | None:
    branch, x = shapes[r.branch_out], shapes[r.input]
    if branch != x and r.optional:  # `shortcut none`: no residual where the shape changes
        _drop_droppaths(ir, r)
        _bypass(ir, r.add, r.branch_out)
        return None
    if branch == x:
        for s in r.shortcut:
            ir.remove(s)
        if r.shortcut:
            ir.g.add_edge(r.input, r.add, index=1)
        r.shortcut = []
        return None
    if not r.shortcut:
        return CompileError("E403", f"the residual branch changes the shape {fmt_shape(x)} -> "
                            f"{fmt_shape(branch)} and there is no shortcut",
                            r.span, hint="add `shortcut conv1 stride, bn` after the residual's `}`, "
                            "or keep the branch's width and stride")
    return None


def _bypass(ir: IRGraph, node: int, by: int) -> None:
    """Remove `node`, its users and every reference to it taking `by` instead."""
    for user in ir.users(node):
        ir.g.add_edge(by, user, index=ir.g.edges[node, user]["index"])
    ir.remove(node)
    for r in ir.residuals:
        r.input = by if r.input == node else r.input
    for gate in ir.gates:
        gate.input = by if gate.input == node else gate.input
    for j in ir.joins:
        j.input = by if j.input == node else j.input
    for _, data in ir.nodes():
        if data.get("width_of", (None,))[0] == node:
            data["width_of"] = (by, data["width_of"][1])


def _drop_droppaths(ir: IRGraph, r: Residual) -> None:
    """Where a `shortcut none` residual is absent, its branch is the block's only path: a
    `droppath` there would drop the block's whole output, so it goes too (as torchvision's
    MBConv applies stochastic depth only with the residual)."""
    branch = (nx.ancestors(ir.g, r.branch_out) & nx.descendants(ir.g, r.input)) | {r.branch_out}
    for nid in sorted(branch, reverse=True):
        if ir.g.nodes[nid]["op"] == "droppath":
            src = ir.inputs(nid)[0]
            if nid == r.branch_out:
                r.branch_out = src
            _bypass(ir, nid, src)


def _gate_error(x: tuple, g: tuple, span) -> CompileError | None:
    if g == x or (len(x) == 3 and g == (x[0], 1, 1)):
        return None
    if len(g) == 1:
        return CompileError("E407", f"the gate's branch ends in a vector of {g[0]}, which cannot scale "
                            f"the {fmt_shape(x)} map", span,
                            hint="end the gate on a map: its `gap` keeps a 1x1 map, so use `conv1` "
                            "rather than `linear` inside the gate")
    return CompileError("E407", f"the gate's branch ends at {fmt_shape(g)} but its input is {fmt_shape(x)}: "
                        "the product needs the same channels", span,
                        hint=f"a gate multiplies its input, so its last conv must give the {x[0]} channels "
                        "the gate starts from; `in` is the block's input width, a conv with no width "
                        "gives the stage's")


def _join_shape(op: str, x: tuple, b: tuple, span) -> tuple | CompileError:
    """`cat`: x and the branch side by side, so the branch must keep the map's size (or the
    token count); `sub`: the branch less x, so it must keep x's whole shape."""
    if op == "cat":
        if len(b) == len(x) and b[1:] == x[1:]:
            return (x[0] + b[0],) + tuple(x[1:])
        return CompileError("E409", f"the concat's branch gives {fmt_shape(b)} but its input is {fmt_shape(x)}: "
                            "they are joined along the channels, so all else must match", span,
                            hint="keep the branch's stride 1 (downsample after the concat, as DenseNet's "
                            "transitions do); the channels may differ")
    if b == x:
        return x
    return CompileError("E409", f"the subtract's branch gives {fmt_shape(b)} but its input is {fmt_shape(x)}: "
                        "`subtract { }` takes its input from the branch's output, so the shapes must match", span,
                        hint="keep the branch's width and stride (PoolFormer's `subtract { avgpool3 }` keeps both)")


def _resolve_width(data: dict, shapes: dict) -> CompileError | None:
    """`0.25x in`: the width is a factor of another node's channels, known only now."""
    ref, factor = data.pop("width_of")
    width = factor * shapes[ref][0]
    if abs(width - round(width)) > 1e-9:
        return CompileError("E308", f"{factor:g} x the block's input of {shapes[ref][0]} channels is "
                            f"{width:g}, not a whole number", data["span"],
                            hint="pick a multiplier that gives whole channels in every stage")
    data["attrs"] = data["attrs"].with_(out=int(round(width)))
    return None


def infer_shapes(ir: IRGraph) -> None:
    errors: list[CompileError] = []
    shapes: dict[int, tuple] = {}
    owner = {n: r for r in ir.residuals for n in (*r.shortcut, r.add)}
    decided: set[int] = set()
    gates = {gate.mul: gate for gate in ir.gates}
    joins = {j.node: j for j in ir.joins}
    applies: dict = {}  # optional residual's span -> whether it applied anywhere
    inputs_of: dict = {}  # an op's span -> the input shape of every use of it
    going_on: dict = {}   # an op's span -> its error that inference went on past (CompileError.goes_on)
    for nid in [n for n, _ in ir.nodes()]:
        if nid not in ir.g:  # an unused shortcut removed below
            continue
        data = ir.g.nodes[nid]
        r = owner.get(nid)
        if r is not None and id(r) not in decided:
            if r.branch_out not in shapes or r.input not in shapes:
                continue
            decided.add(id(r))
            if r.optional:
                key = r.span if r.span is not None else id(r)
                applies[key] = applies.get(key, False) or shapes[r.branch_out] == shapes[r.input]
            err = _decide_shortcut(ir, r, shapes)
            if err:
                errors.append(err)
                continue
            if nid not in ir.g:
                continue
        inputs = ir.inputs(nid)
        if any(i not in shapes for i in inputs):
            continue  # upstream error already reported
        op = data["op"]
        if op == "input":
            shape = tuple(ir.input_shape)
        elif op in ("output", "permute", "tap"):
            shape = shapes[inputs[0]]
        elif op == "tomap":  # a features build's tokens as their map (passes/taps.py)
            shape = (shapes[inputs[0]][0], *data["grid"])
        elif op == "add":
            a, b = (shapes[i] for i in inputs)
            if a != b:
                errors.append(CompileError("E406", f"the shortcut gives {fmt_shape(b)} but the residual "
                                           f"branch gives {fmt_shape(a)}", data["span"] or (r.span if r else None),
                                           hint="make the shortcut's width and stride match the branch"))
                continue
            shape = a
        elif op == "mul":
            x, g = (shapes[i] for i in inputs)
            gate = gates.get(nid)
            err = _gate_error(x, g, data["span"] or (gate.span if gate else None))
            if err:
                errors.append(err)
                continue
            shape = x
        elif op in ("cat", "sub"):
            x, b = (shapes[i] for i in (inputs if op == "cat" else inputs[::-1]))
            join = joins.get(nid)
            got = _join_shape(op, x, b, data["span"] or (join.span if join else None))
            if isinstance(got, CompileError):
                errors.append(got)
                continue
            shape = got
        else:
            if "width_of" in data:
                if data["width_of"][0] not in shapes:
                    continue
                err = _resolve_width(data, shapes)
                if err:
                    errors.append(err)
                    continue
            opdef = ops.get(op)
            x = shapes[inputs[0]]
            inputs_of.setdefault(data["span"], []).append(x)
            try:
                opdef.check_input(x)
                shape = tuple(opdef.out_shape(data["attrs"], x))
            except CompileError as e:
                e.span = e.span or data["span"]
                if e.code in _DEPENDS_ON_INPUT and data["path"]:
                    e.message += f" (at `{data['path']}`{_input_elsewhere(ir, e.span)})"
                if e.goes_on is None:
                    errors.append(e)
                    continue
                if data["span"] not in going_on:  # once per line, the first use that fails
                    going_on[data["span"]] = (e, data["path"])
                    errors.append(e)
                shape = tuple(e.goes_on)
        err = _too_big(shape, data["attrs"])
        if err:
            err.span = data["span"]
            errors.append(err)
            continue
        data["meta"]["in_shape"] = shapes[inputs[0]] if inputs else None
        data["meta"]["shape"] = shape
        shapes[nid] = shape
    for span, (e, path) in going_on.items():
        if e.rehint is not None:
            e.hint = _name_the_block(e.rehint(inputs_of[span]), path, getattr(ir, "stage_blocks", []))
    ir.residuals = [r for r in ir.residuals if r.add in ir.g]
    never = [key for key, applied in applies.items() if not applied]
    for key in never:
        errors.append(CompileError(
            "E408", "this residual can never apply: the branch changes the shape in every block that "
            "uses it, and `shortcut none` drops it there", key if not isinstance(key, int) else None,
            hint="remove `residual { }` and `shortcut none` (the block is plain), or give it a shortcut "
            "such as `shortcut conv1 stride, bn`"))
    if errors:
        raise CompileErrors(errors)


def _name_the_block(hint: str, path: str, stage_blocks: list[str]) -> str:
    """`--set BLOCK.op.kernel=K` in an op's hint, with BLOCK the block the failing op is in
    (`stages.I.blocks...` -> the block stage I repeats), so the line can be pasted."""
    m = re.match(r"stages\.(\d+)\.blocks\.", path)
    if m and int(m[1]) < len(stage_blocks):
        return hint.replace("--set BLOCK.", f"--set {stage_blocks[int(m[1])]}.")
    return hint


def _input_elsewhere(ir: IRGraph, span) -> str:
    """`; the input 3x256x256 is set at mine.arch:2:7` where the spec checked sets the input and
    the failing line is in a spec it extends (a spec that extends swin_t and sets only its input)."""
    at = next((d.get("span") for _, d in ir.g.nodes(data=True) if d.get("op") == "input"), None)
    mine = getattr(ir, "spec_path", None)
    if at is None or span is None or mine is None or str(at.path) != mine or str(span.path) == mine:
        return ""
    return f"; the input {fmt_shape(tuple(ir.input_shape))} is set at {at}"
