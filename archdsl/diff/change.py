"""A step's change as a `Patch`: the edits that turn the network it extends into it.

    p = change("step07")        # move the `dwconv3 stride` unit ahead of `pwconv 4x` in `invbottleneck`

The sections are paired as the diff pairs them (a block with the block that runs in the same
stages of the other network, whatever its name); op sequences are aligned unit by unit
(`dwconv3 stride, bn, relu` is one unit): units that changed places are moves, heads that
differ are replacements, the ops after a head are aligned op by op. Every derived edit list
is replayed on the parent and must give the child exactly; where it does not (a structure
the op edits cannot say), the block or section is stated whole instead.
"""
from __future__ import annotations

import re
from collections import Counter
from difflib import SequenceMatcher
from pathlib import Path

from ..api import SpecLike, as_network
from ..lang.errors import ArchError, Span
from ..lang.flatten import recipe_settings, stage
from ..lang.network import Network
from ..lang.overrides import apply_overrides
from ..lang.patch import Conflict, Edit, Patch, Regions, edit_body, head_of, op_text, shortcut_text, units
from ..lang.printer import block as print_block, op_list, same, setting, strip
from ..lang.specpath import find_spec


def _replay(stmts: tuple, edits: list[Edit]) -> tuple | None:
    regions = Regions(stmts)
    try:
        for e in edits:
            edit_body(regions, e, "it")
    except Conflict:
        return None
    return regions.stmts()


def _span(o) -> Span | None:
    return getattr(o, "span", None)


def _region_edits(regions: Regions, region: str, target: str, b_ops: list) -> list[Edit]:
    """Edits turning `regions`' `region` into `b_ops`, made on `regions` as they are found.
    Raises `Conflict` where units do not pair up."""
    edits: list[Edit] = []

    def do(e: Edit) -> None:
        edit_body(regions, e, target)
        edits.append(e)

    ua, ub = units(regions.get(region)), units(b_ops)
    ha, hb = [head_of(u) for u in ua], [head_of(u) for u in ub]
    if len(ua) != len(ub):
        raise Conflict("units differ")
    if ha != hb and Counter(ha) == Counter(hb) and None not in ha:
        matched = set()
        for m in SequenceMatcher(None, ha, hb, autojunk=False).get_matching_blocks():
            matched.update(range(m.b, m.b + m.size))
        for j in reversed(range(len(hb))):
            if j not in matched:
                do(Edit(kind="move", target=target, region=region, unit=hb[j],
                        after=hb[j + 1] if j + 1 < len(hb) else None, span=_span(ub[j][0])))
    ua = units(regions.get(region))

    def nth(text: str, obj) -> int:
        hits = [o for o in regions.get(region) if op_text(o) == text]
        return next(i for i, o in enumerate(hits) if o is obj)

    for u, v in zip(ua, ub):
        hu, hv = head_of(u), head_of(v)
        if (hu is None) != (hv is None):
            raise Conflict("units differ")
        if hu != hv:
            do(Edit(kind="replace", target=target, region=region, before=hu, after=hv, nth=nth(hu, u[0]),
                    span=_span(v[0])))
            u = next(w for w in units(regions.get(region)) if w[1:] == u[1:] and head_of(w) == hv)
        k = 1 if hv is not None else 0
        ta, tb = [op_text(o) for o in u[k:]], [op_text(o) for o in v[k:]]
        current = list(u)
        for tag, i1, i2, j1, j2 in reversed(SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes()):
            if tag == "equal":
                continue
            if tag == "replace" and i2 - i1 == j2 - j1:
                for i, j in zip(range(i1, i2), range(j1, j2)):
                    do(Edit(kind="replace", target=target, region=region, before=ta[i], after=tb[j],
                            nth=nth(ta[i], current[k + i]), span=_span(v[k + j])))
                continue
            for i in reversed(range(i1, i2)):
                do(Edit(kind="remove", target=target, region=region, before=ta[i], unit=hv,
                        span=_span(v[0])))  # where the step states the unit
            for j in range(j1, j2):
                prev = tb[j - 1] if j > 0 else None
                do(Edit(kind="insert", target=target, region=region, before=tb[j], unit=hv, after=prev,
                        span=_span(v[k + j])))
    return edits


def _collapse(a: tuple, b: tuple, edits: list[Edit]) -> list[Edit]:
    """Replacements of one op by another everywhere it is written: one `every` edit."""
    pairs = dict.fromkeys((e.before, e.after) for e in edits if e.kind == "replace")
    for before, after in pairs:
        group = [e for e in edits if e.kind == "replace" and (e.before, e.after) == (before, after)]
        merged, done = [], False
        for e in edits:
            if e in group:
                if not done:
                    merged.append(e.model_copy(update={"every": True, "region": "", "nth": 0}))
                    done = True
                continue
            merged.append(e)
        out = _replay(a, merged)
        if out is not None and strip(out) == strip(b):
            edits = merged
    return edits


def body_edits(a: tuple, b: tuple, target: str) -> list[Edit] | None:
    """Op edits turning body `a` into body `b` (replayed to make sure), or None."""
    ra, rb = Regions(a), Regions(b)
    if not (ra.editable and rb.editable) or (ra.residual is None) != (rb.residual is None):
        return None
    edits: list[Edit] = []
    try:
        if (ra.shortcut is None) != (rb.shortcut is None) or ra.shortcut_none != rb.shortcut_none:
            e = Edit(kind="shortcut", target=target, text=shortcut_text(rb),
                     span=_span(rb.shortcut[0]) if rb.shortcut else _span(b[0]))
            edit_body(ra, e, target)
            edits.append(e)
        for region in ("residual", "shortcut", ""):
            if rb.get(region) is not None:
                edits += _region_edits(ra, region, target, rb.get(region))
    except Conflict:
        return None
    out = _replay(a, edits)
    if out is None or strip(out) != strip(b):
        return None
    return _collapse(a, b, edits)


def _block_text(block) -> str:
    return "\n".join(" " * ln.indent + ln.text for ln in print_block(block, layout=False))


def _as_kernel_set(a: Network, name: str | None, body: list[Edit]) -> list[Edit]:
    """`dwconv3 stride` -> `dwconv7 stride` everywhere in a block is `set BLOCK.dwconv.kernel 7`,
    which finds the block's dwconvs whatever their kernel (by role)."""
    if name is None or len(body) != 1 or body[0].kind != "replace" or not body[0].every:
        return body
    e = body[0]
    ma = re.fullmatch(r"([a-z]+)(\d+)( .*)?", e.before or "")
    mb = re.fullmatch(r"([a-z]+)(\d+)( .*)?", e.after or "")
    if not (ma and mb) or ma.group(1) != mb.group(1) or ma.group(3) != mb.group(3):
        return body
    key = f"{name}.{mb.group(1)}.kernel"
    try:
        mine = apply_overrides(a, {key: mb.group(2)}).blocks[name]
    except ArchError:
        return body
    out = _replay(a.blocks[name].body, body)
    return [Edit(kind="set", key=key, text=mb.group(2), span=e.span)] if same(mine.body, out) else body


def _stages(a: Network, b: Network) -> list[Edit]:
    span = b.spans.get("stages")
    pairs = list(dict.fromkeys((sa.block, sb.block) for sa, sb in zip(a.stages, b.stages)))
    mapping: dict[str, str] = {}
    consistent = len(a.stages) == len(b.stages)
    for pa, pb in pairs:
        consistent = consistent and mapping.setdefault(pa, pb) == pb
    if consistent and len(set(mapping.values())) != len(mapping):
        consistent = False
    edits: list[Edit] = []
    if not consistent:
        for name in dict.fromkeys(s.block for s in b.stages):
            if name not in a.blocks or not same(a.blocks[name], b.blocks[name]):
                edits.append(Edit(kind="block", key=name, text=_block_text(b.blocks[name]), span=b.blocks[name].span))
    # per-stage values (`t=6`) have no `set` key: where they change, the stage lines are stated whole
    text, before = (_stage_lines(n) for n in (b, a))
    if not consistent:
        return edits + [Edit(kind="stages", text=text, before=before, span=span)]
    for pa, pb in pairs:
        ba, bb = a.blocks[pa], b.blocks[pb]
        if pa == pb and same(ba.body, bb.body):
            continue
        body = body_edits(ba.body, bb.body, f"block {pb}") if same(ba.params, bb.params) else None
        if body is None:  # also where the per-stage values it reads change: `block inverted(t, k)`
            edits.append(Edit(kind="block", target=f"block {pa}", key=pb, text=_block_text(bb), span=bb.span))
            continue
        if pa != pb:
            edits.append(Edit(kind="rename", target=f"block {pa}", key=pb, span=bb.name.span))
        edits += _as_kernel_set(a, pb if pa == pb else None, body)
    if any(sa.values != sb.values for sa, sb in zip(a.stages, b.stages)):
        return edits + [Edit(kind="stages", text=text, before=before, span=span)]  # after any rename
    for what in ("depths", "widths"):
        va, vb = getattr(a, what), getattr(b, what)
        if va != vb:
            edits.append(Edit(kind="set", key=what, text=",".join(map(str, vb)), before=",".join(map(str, va)),
                              span=_set_span(b, what) or span))
    for i, (sa, sb) in enumerate(zip(a.stages, b.stages)):
        if sa.stride != sb.stride:
            edits.append(Edit(kind="set", key=f"stages.{i}.stride", text=str(sb.stride), span=span))
    return edits


def _set_span(net: Network, key: str) -> Span | None:
    """Where `net`'s own file says `set KEY ...`, if it does (a warning points there)."""
    from ..lang.parser import parse

    try:
        spec = parse(Path(net.path).read_text(), net.path)
    except (OSError, ArchError):
        return None
    return next((s.span for s in spec.sets if s.key.text == key), None)


def _stage_lines(net: Network) -> str:
    return "\n".join(" ".join(w.text for w in (st.width, st.block, st.depth, *st.args))
                     for st in (stage(s.width, s.block, s.depth, s.stride, s.values) for s in net.stages))


def _section(section: str, a: Network, b: Network) -> list[Edit]:
    oa, ob = getattr(a, section), getattr(b, section)
    if same_ops(oa, ob):
        return []
    if oa and ob:
        body = body_edits(tuple(oa), tuple(ob), section)
        if body is not None:
            return body
    return [Edit(kind="section", target=section, text=op_list(tuple(ob)) if ob else None,
                 span=b.spans.get(section))]


def same_ops(oa, ob) -> bool:
    return strip(tuple(oa or ())) == strip(tuple(ob or ()))


def between(a: Network, b: Network, step: str | None = None, parent: str | None = None) -> "Patch":
    """The patch that turns `a` into `b`."""
    edits: list[Edit] = []
    if a.input != b.input:
        edits.append(Edit(kind="set", key="input", text="x".join(map(str, b.input)), span=b.spans.get("input")))
    if a.classes != b.classes:
        edits.append(Edit(kind="set", key="classes", text=str(b.classes), span=b.spans.get("classes")))
    edits += _section("stem", a, b)
    edits += _stages(a, b)
    edits += _section("downsample", a, b) + _section("head", a, b)
    if (a.init.scheme, a.init.arg) != (b.init.scheme, b.init.arg):
        edits.append(Edit(kind="init", text=" ".join(filter(None, (b.init.scheme, b.init.arg))),
                          span=b.init.span))
    la = {s.key.text: setting(s) for s in recipe_settings(a.train)}
    lb = {s.key.text: setting(s) for s in recipe_settings(b.train)}
    for key in dict.fromkeys([*lb, *la]):
        if la.get(key) != lb.get(key):
            text = lb[key][len(key):].strip() if key in lb else None
            edits.append(Edit(kind="train", key=key, text=text, span=b.spans.get("train")))
    return Patch(step=step or b.name, parent=parent or a.name, edits=tuple(edits))


def parent_of(net: Network) -> Network | None:
    if not net.chain:
        return None
    return as_network(find_spec(net.chain[0], Path(net.path).parent))


def change(step: SpecLike, parent: SpecLike | None = None) -> Patch:
    """The change `step` makes to the spec it extends (or to `parent`), as a `Patch`."""
    b = as_network(step)
    a = as_network(parent) if parent is not None else parent_of(b)
    if a is None:
        return Patch(step=b.name)
    return between(a, b)




# ---- changes that carry across bases ------------------------------------------------------

def _stage_values(edit: Edit, text: str) -> dict[str, tuple[int, ...]]:
    """What a `set depths/widths` or `stages` edit's text (or `before`) says per stage."""
    if edit.kind == "set":
        return {edit.key: tuple(int(v) for v in text.split(","))}
    rows = [line.split() for line in text.split("\n") if line.strip()]
    return {"widths": tuple(int(r[0]) for r in rows), "depths": tuple(int(r[2][1:]) for r in rows)}


def _stage_edits(patch: Patch):
    for e in patch.edits:
        if e.before and (e.kind == "stages" or (e.kind == "set" and e.key in ("depths", "widths"))):
            yield e, _stage_values(e, e.before), _stage_values(e, e.text or "")


def carry_notes(patch: Patch, base: Network) -> list[tuple[Edit, str]]:
    """Where a value the step states absolutely (depths, widths) was changed from its own base's
    and overwrites a different value of `base`: (the edit, what to say), for a warning on the
    step's line: `step02_stage_ratio sets depths 3,3,9,3 (from 3,4,6,3); resnet101 has 3,4,23,3`."""
    notes = []
    for e, old, new in _stage_edits(patch):
        for key in old:
            have = getattr(base, key)
            if new[key] != old[key] and have != old[key]:
                notes.append((e, f"{patch.step} sets {key} {','.join(map(str, new[key]))} "
                                 f"(from {','.join(map(str, old[key]))}); {base.name} has {','.join(map(str, have))}"))
    return notes


def _carried(patch: Patch, base: Network, result: Network) -> Network:
    """The step's stage changes as relative intent: a stage's depth or width the step left as
    its base had it follows `base`; one it changed is `base`'s scaled by the step's ratio."""
    stages = list(result.stages)
    for _, old, new in _stage_edits(patch):
        for key, attr in (("depths", "depth"), ("widths", "width")):
            have = getattr(base, key)
            if key not in old or not len(old[key]) == len(new[key]) == len(have) == len(stages):
                continue
            for i, (o, n, h) in enumerate(zip(old[key], new[key], have)):
                value = h if n == o else max(1, round(h * n / o))
                stages[i] = stages[i].model_copy(update={attr: value})
    return result.model_copy(update={"stages": tuple(stages)})


def apply(step: SpecLike | Patch, onto: SpecLike, carry: bool = False) -> Network:
    """`onto` with the change of `step` (a step spec, or a `Patch`) made, checked: a change
    that does not fit is a `PatchError` (E901-E904) naming both sides; a result that does not
    check is E906 followed by what is wrong with it; an empty change is E907.

    carry=True: the step's depths and widths carry as relative intent (see `_carried`), so a
    roadmap replayed onto ResNet-101 gives a deeper ConvNeXt rather than ConvNeXt-T; without it
    the step's values are taken as written (`carry_notes` says where they overwrite the base's)."""
    from ..api import check
    from ..lang.errors import ArchErrors
    from ..lang.patch import PatchError, apply_patch

    patch = step if isinstance(step, Patch) else change(step)
    if not patch.edits:  # applying it would be a silent no-op
        what = f"changes nothing in {patch.parent}" if patch.parent else "extends nothing"
        raise PatchError(f"{patch.step} {what}: there is no change to apply", code="E907",
                         hint="name a step that states a change, e.g. `archdsl apply step09 --onto step00`")
    base = as_network(onto)
    result, _ = apply_patch(patch, base)
    if carry:
        result = _carried(patch, base, result)
    result = result.model_copy(update={"name": f"{patch.step}_on_{base.name}"})
    try:
        check(result)
    except ArchError as e:
        head = PatchError(f"{patch.step}'s change applied to {base.name} does not check",
                          hint="the change fits, but the network it makes does not; what is wrong follows",
                          code="E906")
        raise ArchErrors([head, *e.errors]) from None
    return result
