"""Shape inference and checks, before anything is allocated.

Writes `meta["in_shape"]` and `meta["shape"]` on every node, decides each residual's
shortcut (kept only where the branch changes the shape; removed otherwise) and collects
every error it finds. A node downstream of an error is skipped, so one mistake is
reported once."""
from __future__ import annotations

from .. import ops
from ..errors import CompileError, CompileErrors
from ..ir import IRGraph, Residual
from ..ops import fmt_shape


# Errors that depend on the shape flowing in: a line used many times (a block, `downsample`)
# may fail in only one use, so the message names it.
_DEPENDS_ON_INPUT = ("E401", "E402", "E407")
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


def infer_shapes(ir: IRGraph) -> None:
    errors: list[CompileError] = []
    shapes: dict[int, tuple] = {}
    owner = {n: r for r in ir.residuals for n in (*r.shortcut, r.add)}
    decided: set[int] = set()
    for nid in [n for n, _ in ir.nodes()]:
        if nid not in ir.g:  # an unused shortcut removed below
            continue
        data = ir.g.nodes[nid]
        r = owner.get(nid)
        if r is not None and id(r) not in decided:
            if r.branch_out not in shapes or r.input not in shapes:
                continue
            decided.add(id(r))
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
        elif op in ("output", "permute"):
            shape = shapes[inputs[0]]
        elif op == "add":
            a, b = (shapes[i] for i in inputs)
            if a != b:
                errors.append(CompileError("E406", f"the shortcut gives {fmt_shape(b)} but the residual "
                                           f"branch gives {fmt_shape(a)}", data["span"] or (r.span if r else None),
                                           hint="make the shortcut's width and stride match the branch"))
                continue
            shape = a
        else:
            opdef = ops.get(op)
            x = shapes[inputs[0]]
            try:
                opdef.check_input(x)
                shape = tuple(opdef.out_shape(data["attrs"], x))
            except CompileError as e:
                e.span = e.span or data["span"]
                if e.code in _DEPENDS_ON_INPUT and data["path"]:
                    e.message += f" (at `{data['path']}`)"
                errors.append(e)
                continue
        err = _too_big(shape, data["attrs"])
        if err:
            err.span = data["span"]
            errors.append(err)
            continue
        data["meta"]["in_shape"] = shapes[inputs[0]] if inputs else None
        data["meta"]["shape"] = shape
        shapes[nid] = shape
    if errors:
        raise CompileErrors(errors)
