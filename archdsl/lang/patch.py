"""A change as a value: a `Patch` is a list of edits that turn one network into another, and
`apply_patch` makes the same edits to any other network.

    p = archdsl.change("step09")          # what step09 changes in step08: relu -> gelu in the block
    print(p)                              # one line per edit
    Patch.from_json(p.to_json()) == p
    net = apply_patch(p, archdsl.load("step00"))   # ResNet-50 with GELU

The edits (`Edit.kind`):

    set      KEY VALUE          a `set`/`--set` key: depths, widths, stages.I.stride, BLOCK.OP.kernel,
                                input, classes
    replace  BEFORE -> AFTER    an op replaced; `every`: every op written BEFORE in the block or section
    remove   OP from UNIT       an op removed from a unit (`dwconv7 stride, bn, relu` is the unit of `dwconv7 stride`)
    insert   OP into UNIT       an op added to a unit, after the op named `after` (or after the unit's head)
    move     UNIT before OTHER  a unit moved ahead of another (to the end when OTHER is none)
    shortcut OPS | none         the residual's shortcut stated whole (`none`: `shortcut none`), or dropped
    rename   BLOCK -> NAME      the stages that ran BLOCK run a copy of it named NAME
    block    NAME               a block stated whole (it replaces `replaces` in the stages that ran it)
    section  stem|downsample|head   the section stated whole
    stages / init / train KEY   the stages, the init, one line of the recipe stated whole

How an edit finds its place in another network (by role, not by text):
  - a block edit names the block of the spec it came from; in another network it edits that
    block if the stages run it, else the one block the stages run (ReLU -> GELU in
    `invbottleneck` edits ResNet-50's `bottleneck`); several candidates are an error;
  - `BLOCK.OP.kernel` follows the same rule for its block;
  - a unit is found by its head op as written (`dwconv7 stride`), else by the head's kind
    (`dwconv3 stride` is a `dwconv` unit too) when exactly one unit of that kind is there;
  - an edit that finds nothing to edit is an `E9xx` error naming both sides, never a no-op.
  - a `gate { }` or `if t > 1 { }` whose body is ops is one item, named by its whole text: a
    gate follows the unit before it (SE after `conv1, bn`: `insert gate {...} into conv1 after bn`),
    a guard is a unit of its own; op edits do not reach inside them (`relu -> gelu everywhere`
    leaves an SE gate's ReLU alone); a body with deeper structure is stated whole (E904);
  - per-stage values (`t=6`) have no `set` key: a change of them states the stage lines whole.
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from . import ast, printer
from .errors import ArchError, ErrorCollector, Span
from .network import InitSpec, Network, StageSpec

Region = Literal["", "residual", "shortcut"]  # "": a section, or a block's top level (every region for `every`)
Kind = Literal["set", "replace", "remove", "insert", "move", "shortcut", "rename", "block", "section", "stages",
               "init", "train"]


class PatchError(ArchError):
    """A change that does not fit the network it is applied to."""

    code = "E900"


class Edit(BaseModel):
    """One edit. Which fields it uses depends on `kind` (see the module docstring)."""

    model_config = ConfigDict(frozen=True)

    kind: Kind
    target: str = ""               # `block NAME`, `stem`, `downsample`, `head`; "" for the rest
    region: Region = ""
    key: str = ""                  # set: the key; train: the line's key; rename/block: the new name
    before: str | None = None      # replace: the op as written before; remove/insert: the op;
                                   # set depths/widths, stages: the step's base's (what `carry` reads)
    after: str | None = None       # replace: the new op; insert: the op it follows; move: the unit it precedes
    unit: str | None = None        # remove/insert/move: the head of the unit
    every: bool = False
    nth: int = 0                   # replace without `every`: which of the ops written BEFORE
    text: str | None = None        # set: the value; block/section/stages/init/train: what is stated
    span: Span | None = None       # where the step states it

    def describe(self) -> str:
        where = f"{self.target}" + (f" ({self.region})" if self.region else "")
        k = self.kind
        if k == "set":
            return f"set {self.key} {self.text}"
        if k == "replace":
            return f"{where}: `{self.before}` -> `{self.after}`" + (" everywhere" if self.every else "")
        if k == "remove":
            return f"{where}: remove `{self.before}` from the `{self.unit}` unit"
        if k == "insert":
            return f"{where}: add `{self.before}` to the `{self.unit}` unit after `{self.after or self.unit}`"
        if k == "move":
            return f"{where}: move the `{self.unit}` unit " + (f"ahead of `{self.after}`" if self.after else "to the end")
        if k == "shortcut":
            return f"{self.target}: shortcut " + (f"`{self.text}`" if self.text else "dropped")
        if k == "rename":
            return f"{self.target} -> block `{self.key}` in the stages that ran it"
        if k == "block":
            return f"block `{self.key}` stated whole" + (f", run where `{self.target[6:]}` ran" if self.target else "")
        if k == "train":
            return f"train {self.key} {self.text}" if self.text is not None else f"train: no `{self.key}` line"
        if k == "section" and self.text is None:
            return f"no {self.target}"
        return f"{self.target or k} {self.text}".replace("\n", "; ")  # one line: it is also a comment


class Patch(BaseModel):
    """The change from `parent` to `step`: edits applied in order."""

    model_config = ConfigDict(frozen=True)

    step: str
    parent: str | None = None
    edits: tuple[Edit, ...] = ()

    @field_validator("step", "parent")
    @classmethod
    def _one_printable_line(cls, v: str | None) -> str | None:
        # the names are written into specs (`# STEP's change applied ...`) and onto terminals
        if v is not None and not (v.isprintable() and 0 < len(v) <= 200):
            raise ValueError(f"a step name is one line of printable text (at most 200 characters), "
                             f"not {ascii(v[:60])}")
        return v

    def __bool__(self) -> bool:
        return bool(self.edits)

    def __str__(self) -> str:
        head = f"change {self.parent} -> {self.step}" if self.parent else f"change of {self.step}"
        return "\n".join([head + ":"] + [f"  {e.describe()}" for e in self.edits] if self.edits else
                         [head + ": none"]) + "\n"

    def summary(self) -> str:
        return "; ".join(e.describe() for e in self.edits) or "none"

    def __repr__(self) -> str:
        from .views import patch_text
        return patch_text(self)

    def _repr_html_(self) -> str:
        from .views import patch_html
        return patch_html(self)

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent, exclude_defaults=True)

    @classmethod
    def from_json(cls, text: str) -> "Patch":
        from pydantic import ValidationError

        try:
            return cls.model_validate_json(text)
        except ValidationError as e:
            raise PatchError(f"not a change: {e.errors()[0]['msg'].removeprefix('Value error, ')}",
                             code="E905") from None


# ---- words, ops and units --------------------------------------------------------------------

def op_text(o) -> str:
    """An item of an op list as written: `dwconv7 stride`, `residual` (its body is a region of
    its own), or a gate or guard whole, `gate { gap, conv1 0.25x, relu, conv1, sigmoid }`."""
    if isinstance(o, ast.Residual):
        return "residual"
    if isinstance(o, (ast.Gate, ast.Join)):
        return f"{getattr(o, 'kind', 'gate')} {{ " + ", ".join(op_text(x) for x in o.body) + " }"
    if isinstance(o, ast.Guard):
        return f"if {o.name.text} {o.cmp.text} {o.value.text} {{ " + ", ".join(op_text(x) for x in o.body) + " }"
    return printer.op(o)


def role(text: str) -> str:
    """The kind of op a head is, for finding it in another network: `dwconv3 stride` and
    `dwconv7` are both `dwconv`; `conv1 ...` is `pwconv`."""
    name = text.split()[0] if text else ""
    if re.fullmatch(r"conv1", name):
        return "pwconv"
    return re.sub(r"\d+$", "", name)


def _same_word(before: str | None, after: str | None) -> bool:
    """`dwconv7 stride` -> `dwconv7`: the same op word, other arguments."""
    return bool(before and after) and before.split()[0] == after.split()[0] and before != after


def parse_ops(text: str) -> tuple:
    from .parser import parse

    if "{" in text:  # a gate or a guard, stated whole
        return parse_block(f"block change {{\n{text}\n}}").body
    spec = parse(f"network change\nstem {text}\n", "<change>")
    return spec.stem or ()


def parse_block(text: str) -> ast.Block:
    from .parser import parse

    name = text.split()[1] if len(text.split()) > 1 else "block"
    spec = parse(f"network change\n{text}\n", f"<change: block {name}>")  # the block's errors show its text
    return next(iter(spec.blocks.values()))


def _computes(o) -> bool:
    if isinstance(o, (ast.Residual, ast.Guard, ast.Join)):  # a guard's or join's body is a unit of its own
        return True
    if isinstance(o, ast.Gate):  # a gate scales the output of the unit it follows, as a norm does
        return False
    from .to_ir import lookup_op

    try:
        definition, _ = lookup_op(o.name)
    except ArchError:
        return True
    return definition.family not in ("norm", "act", "drop", "scale")


def units(ops: list) -> list[list]:
    """Ops split into units: each computing op (or a residual) with the ops after it; ops
    ahead of the first computing op form a unit with no head."""
    out: list[list] = []
    for o in ops:
        if _computes(o) or not out:
            out.append([o])
        else:
            out[-1].append(o)
    return out


def head_of(unit: list) -> str | None:
    return op_text(unit[0]) if _computes(unit[0]) else None


class Regions:
    """A block body (or a section) as editable op lists: the top level (a residual is one item
    there), the residual branch and the shortcut. Only bodies with at most one residual, not
    nested, can be edited op by op; others are stated whole."""

    def __init__(self, stmts: tuple):
        self.top = list(stmts)
        self.residual: list | None = None
        self.shortcut: list | None = None
        self.shortcut_none = False
        res = [s for s in stmts if isinstance(s, ast.Residual)]
        others = [s for s in stmts if not isinstance(s, ast.Residual) and not _item(s)]
        self.editable = len(res) <= 1 and not others
        if res:
            r = res[0]
            self.editable = self.editable and all(_item(s) for s in r.body)
            self.residual = list(r.body)
            self.shortcut = list(r.shortcut) if r.shortcut else None
            self.shortcut_none = r.shortcut_none is not None
            self._res = r

    def get(self, region: str) -> list | None:
        return {"": self.top, "residual": self.residual, "shortcut": self.shortcut}[region]

    def all(self) -> list[tuple[str, list]]:
        return [(n, ops) for n, ops in (("", self.top), ("residual", self.residual), ("shortcut", self.shortcut))
                if ops is not None]

    def stmts(self) -> tuple:
        if self.residual is None:
            return tuple(self.top)
        none = (self._res.shortcut_none or ast.Word(text="none", span=self._res.span)) if self.shortcut_none else None
        r = self._res.model_copy(update={"body": tuple(self.residual), "shortcut_none": none,
                                         "shortcut": tuple(self.shortcut) if self.shortcut else None})
        return tuple(r if isinstance(s, ast.Residual) else s for s in self.top)


def _item(s) -> bool:
    """An item an op edit can address: an op, or a gate or guard whose body is ops only (it is
    inserted, removed or moved as a unit, by its text)."""
    if isinstance(s, (ast.Gate, ast.Guard, ast.Join)):
        return all(isinstance(x, ast.Op) for x in s.body)
    return isinstance(s, ast.Op)


def shortcut_text(regions: Regions) -> str | None:
    """The residual's shortcut as a `shortcut` edit states it: its ops, `none`, or None (identity)."""
    return "none" if regions.shortcut_none else printer.op_list(regions.shortcut) if regions.shortcut else None


# ---- applying one body edit --------------------------------------------------------------------

class Conflict(Exception):
    """An edit that finds nothing to edit: what it looked for, and what is there instead."""

    def __init__(self, message: str, hint: str | None = None, code: str = "E902"):
        super().__init__(message)
        self.message, self.hint, self.code = message, hint, code


def _find_unit(ops: list, head: str | None, where: str) -> list:
    us = units(ops)
    exact = [u for u in us if head_of(u) == head]
    if exact:
        return exact[0]
    kin = [u for u in us if head is not None and head_of(u) is not None and role(head_of(u)) == role(head)]
    if len(kin) == 1:
        return kin[0]
    there = ", ".join(f"`{head_of(u)}`" for u in us if head_of(u)) or "none"
    if len(kin) > 1:
        raise Conflict(f"several `{role(head)}` units in {where}, none written `{head}`",
                       hint=f"the units there: {there}", code="E903")
    raise Conflict(f"no `{head or 'leading'}` unit in {where}", hint=f"the units there: {there}", code="E903")


def edit_body(regions: Regions, e: Edit, where: str) -> None:
    """Make one op-level edit in place; a `Conflict` when it finds nothing to edit."""
    if not regions.editable:
        raise Conflict(f"{where} has a structure an op edit cannot address", code="E904",
                       hint="state the block whole")
    if e.kind == "shortcut":
        if regions.residual is None:
            raise Conflict(f"{where} has no residual to give a shortcut", code="E903")
        regions.shortcut_none = e.text == "none"
        regions.shortcut = list(parse_ops(e.text)) if e.text and e.text != "none" else None
        return
    if e.kind == "replace":
        new = parse_ops(e.after)
        scope = regions.all() if e.every and not e.region else [(e.region, regions.get(e.region))]
        hits = [(ops, i) for _, ops in scope if ops is not None for i, o in enumerate(ops) if op_text(o) == e.before]
        if not hits and _same_word(e.before, e.after):  # only the arguments change: find the op by its kind
            args = e.before.split()[1:]
            hits = [(ops, i) for _, ops in scope if ops is not None for i, o in enumerate(ops)
                    if isinstance(o, ast.Op) and role(op_text(o)) == role(e.before) and [a.text for a in o.args] == args]
            new = ()  # each keeps its own op word (its kernel), with the new arguments
        if not hits:
            ops_there = "; ".join(f"{name or 'top level'}: " + ", ".join(op_text(o) for o in ops)
                                  for name, ops in scope if ops)
            raise Conflict(f"no `{e.before}` to replace with `{e.after}` in {where}",
                           hint=f"what is there: {ops_there or 'nothing'}")
        if not e.every:
            if e.nth >= len(hits):
                raise Conflict(f"only {len(hits)} `{e.before}` in {where}, the change replaces number {e.nth + 1}")
            hits = [hits[e.nth]]
        for ops, i in reversed(hits):
            ops[i:i + 1] = list(new or parse_ops(" ".join([ops[i].name.text, *e.after.split()[1:]])))
        return
    ops = regions.get(e.region)
    if ops is None:
        raise Conflict(f"{where} has no {e.region or 'body'}", code="E903")
    if e.kind == "move":
        unit = _find_unit(ops, e.unit, where)
        for o in unit:
            ops.remove(o)
        if e.after is None:
            ops.extend(unit)
        else:
            target = _find_unit(ops, e.after, where)
            i = ops.index(target[0])
            ops[i:i] = unit
        return
    unit = _find_unit(ops, e.unit, where)
    start = ops.index(unit[0])
    tail = [op_text(o) for o in unit]
    if e.kind == "remove":
        if e.before not in tail[1 if head_of(unit) else 0:]:
            raise Conflict(f"no `{e.before}` to remove in the `{head_of(unit) or 'leading'}` unit of {where}",
                           hint=f"the unit is `{', '.join(tail)}`")
        i = tail.index(e.before, 1 if head_of(unit) else 0)
        del ops[start + i]
    elif e.kind == "insert":
        anchor = e.after if e.after is not None else e.unit
        if anchor is None:
            i = -1
        elif anchor in tail:
            i = tail.index(anchor)
        elif e.after is not None and e.after not in tail:
            raise Conflict(f"no `{e.after}` in the `{head_of(unit)}` unit of {where} to add `{e.before}` after",
                           hint=f"the unit is `{', '.join(tail)}`", code="E903")
        else:
            i = 0
        ops[start + i + 1:start + i + 1] = list(parse_ops(e.before))


# ---- applying a patch to a network --------------------------------------------------------------

def _run_blocks(net: Network) -> list[str]:
    return list(dict.fromkeys(s.block for s in net.stages))


def target_block(net: Network, name: str, base: str) -> str:
    """The block of `net` that an edit of block `name` edits (see the module docstring)."""
    run = _run_blocks(net)
    if name in run:
        return name
    if len(run) == 1:
        return run[0]
    raise Conflict(f"{base} has no block `{name}` in its stages, and its stages run several blocks",
                   hint="the stages run " + ", ".join(f"`{b}`" for b in run) + "; apply the change to a "
                   "network whose stages run one block, or name the block in the step", code="E901")


def _set(net: Network, e: Edit, base: str) -> Network:
    from .overrides import apply_overrides, train_values
    from .recipe import build_recipe

    key = e.key
    m = re.fullmatch(r"(\w+)\.(\w+?)\.kernel", key)
    if m and m.group(1) not in ("stem", "downsample", "head"):
        key = f"{target_block(net, m.group(1), base)}.{m.group(2)}.kernel"
    try:
        if key.startswith("train."):
            return net.model_copy(update={"train": build_recipe(net.train.model_dump() | train_values({key: e.text}))})
        return apply_overrides(net, {key: e.text})
    except ArchError as err:
        raise Conflict(f"`set {key} {e.text}` does not fit {base}: {err.message}", hint=err.hint) from None


def _train(net: Network, e: Edit) -> Network:
    from .flatten import recipe_settings
    from .parser import parse
    from .recipe import build_recipe, recipe_fields

    lines = {s.key.text: s for s in recipe_settings(net.train)}
    if e.text is None:
        lines.pop(e.key, None)
    else:
        lines[e.key] = parse(f"network p\ntrain {{\n{e.key} {e.text}\n}}\n", "<patch>").train[0]
    values, _ = recipe_fields(tuple(lines.values()))
    return net.model_copy(update={"train": build_recipe(values)})


def apply_edit(net: Network, e: Edit, base: str) -> Network:
    """`net` with one edit made; a `Conflict` when the edit does not fit it."""
    k = e.kind
    if k == "set":
        return _set(net, e, base)
    if k == "train":
        return _train(net, e)
    if k == "init":
        scheme, *arg = (e.text or "default").split()
        return net.model_copy(update={"init": InitSpec(scheme=scheme, arg=arg[0] if arg else None)})
    if k == "stages":
        from .parser import parse

        stages = parse(f"network p\nstages {{\n{e.text}\n}}\n", "<patch>").stages
        return net.model_copy(update={"stages": tuple(_stage_spec(s) for s in stages)})
    if k == "section":
        ops = parse_ops(e.text) if e.text is not None else None
        return net.model_copy(update={e.target: ops if ops is not None or e.target == "downsample" else ()})
    if k in ("rename", "block"):
        old = target_block(net, e.target[6:], base) if e.target else None
        blocks = dict(net.blocks)
        if k == "rename":
            blocks[e.key] = blocks[old].model_copy(update={"name": blocks[old].name.model_copy(update={"text": e.key})})
        else:
            blocks[e.key] = parse_block(e.text)
        stages = tuple(s.model_copy(update={"block": e.key}) if old and s.block == old else s for s in net.stages)
        return net.model_copy(update={"blocks": blocks, "stages": stages})
    # op edits in a block or a section
    if e.target.startswith("block "):
        name = target_block(net, e.target[6:], base)
        block = net.blocks[name]
        regions = Regions(block.body)
        edit_body(regions, e, f"block `{name}` of {base}")
        blocks = dict(net.blocks)
        blocks[name] = block.model_copy(update={"body": regions.stmts()})
        return net.model_copy(update={"blocks": blocks})
    ops = getattr(net, e.target)
    if not ops:
        raise Conflict(f"{base} has no {e.target}", code="E901")
    regions = Regions(tuple(ops))
    edit_body(regions, e, f"the {e.target} of {base}")
    return net.model_copy(update={e.target: regions.stmts()})


def _stage_spec(s: ast.Stage) -> StageSpec:
    """A stage line of a `stages` edit: `24 inverted x2 s2 t=6`."""
    stride = next((int(a.text[1:]) for a in s.args if re.fullmatch(r"s\d+", a.text)), 1)
    values = dict(a.text.split("=", 1) for a in s.args if "=" in a.text)
    return StageSpec(width=int(s.width.text), block=s.block.text, depth=int(s.depth.text[1:]), stride=stride,
                     values={k: float(v) for k, v in values.items()})


def apply_patch(patch: Patch, net: Network, strict: bool = True) -> tuple[Network, list[PatchError]]:
    """`net` with every edit of `patch` made, and the edits that did not fit (strict: raised,
    all together, each at the line of the step that states it)."""
    base = net.name
    conflicts: list[PatchError] = []
    for e in patch.edits:
        try:
            net = apply_edit(net, e, base)
        except Conflict as c:
            msg = f"{patch.step}'s change does not apply to {net.name}: {c.message}"
            hint = f"the edit: {e.describe()}" + (f"; {c.hint}" if c.hint else "")
            conflicts.append(PatchError(msg, e.span, hint, c.code))
    if strict and conflicts:
        errors = ErrorCollector()
        for c in conflicts:
            errors.add(c)
        errors.raise_if_any()
    return net, conflicts


# ---- the result as a readable spec: `extends BASE` plus what differs ----------------------------

def child_spec(result: Network, base: Network, name: str, note: tuple[str, ...] = ()) -> ast.SpecFile:
    """A spec extending `base` that resolves to `result`: it states only what differs, as
    `set` lines where a `set` says it (widths, depths, a kernel), whole sections elsewhere.
    A flat spec (no `extends`) where a child cannot say it (a section removed)."""
    from .flatten import flatten, recipe_settings, setting, stage, w
    from .printer import same

    comments = tuple(ast.Comment(text=f"# {line}" if line else "#", span=Span("<patch>", 0, 1, 0, 1))
                     for line in note)
    if any(getattr(base, s) and not getattr(result, s) for s in ("stem", "downsample", "head")):
        return flatten(result, name).model_copy(update={"comments": comments})
    fields: dict = {"path": "<patch>", "name": w(name), "extends": w(base.name), "blocks": {}, "comments": comments}
    sets: list[ast.SetLine] = []
    if result.input != base.input:
        fields["input"] = w("x".join(map(str, result.input)))
    if result.classes != base.classes:
        fields["classes"] = w(str(result.classes))
    for b in dict.fromkeys(s.block for s in result.stages):
        block = result.blocks[b]
        if b in base.blocks and same(block, base.blocks[b]):
            continue
        kernel = _kernel_set(base, block) if b in base.blocks else None
        if kernel:
            sets.append(ast.SetLine(key=w(kernel[0]), values=(w(kernel[1]),), span=_NO))
        else:
            fields["blocks"][b] = block
    for section in ("stem", "downsample", "head"):
        if not same(tuple(getattr(result, section) or ()), tuple(getattr(base, section) or ())):
            fields[section] = getattr(result, section)
    shape = [(s.block, s.stride, s.values) for s in result.stages]
    if shape == [(s.block, s.stride, s.values) for s in base.stages]:
        for what in ("depths", "widths"):
            if getattr(result, what) != getattr(base, what):
                sets.append(ast.SetLine(key=w(what), values=tuple(w(str(v)) for v in getattr(result, what)),
                                        span=_NO))
    else:
        fields["stages"] = tuple(stage(s.width, s.block, s.depth, s.stride, s.values) for s in result.stages)
    if (result.init.scheme, result.init.arg) != (base.init.scheme, base.init.arg):
        fields["init"] = setting(result.init.scheme, (result.init.arg,) if result.init.arg else ())
    if result.train != base.train:
        fields["train"] = recipe_settings(result.train)
    fields["sets"] = tuple(sets)
    return ast.SpecFile(**fields)


_NO = Span("<patch>", 1, 1, 1, 1)


def _kernel_set(base: Network, block: ast.Block) -> tuple[str, str] | None:
    """`(BLOCK.OP.kernel, K)` when that `set` turns the base's block into `block`."""
    from .overrides import apply_overrides
    from .printer import same

    name = block.name.text
    mine = [o for o in _ops(block.body)]
    theirs = [o for o in _ops(base.blocks[name].body)]
    if len(mine) != len(theirs):
        return None
    changed = [(a, b) for a, b in zip(theirs, mine) if op_text(a) != op_text(b)]
    if not changed:
        return None
    words = {re.fullmatch(r"([a-z]+)(\d+)", b.name.text) for _, b in changed}
    if None in words or len({(m.group(1), m.group(2)) for m in words}) != 1:
        return None
    op, k = next(iter(words)).groups()
    try:
        candidate = apply_overrides(base, {f"{name}.{op}.kernel": k}).blocks[name]
    except ArchError:
        return None
    return (f"{name}.{op}.kernel", k) if same(candidate, block) else None


def _ops(stmts) -> list:
    out = []
    for s in stmts:
        if isinstance(s, ast.Residual):
            out += _ops(s.body) + list(s.shortcut or ())
        elif isinstance(s, (ast.Gate, ast.Guard, ast.Join)):
            out += _ops(s.body)
        elif isinstance(s, ast.Op):
            out.append(s)
    return out
