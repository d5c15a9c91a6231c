"""Diagrams drawn from the spec with matplotlib (Agg; no system binary), as the paper's
figures draw a network:

- `draw_network`: the network as a column (input, stem, each stage with its block, depth
  and width, the downsample layers between stages, the head), and beside it each block kind
  once, op by op, with its channels where it first runs (`96 -> 384`), the residual as a skip
  arrow to the add and the shortcut's ops on that arrow where the spec has one;
- `draw_diff`: two networks' blocks side by side (the blocks of the first stage, as
  `archdsl diff` pairs them), ops the diff pairs joined by a line, changed, moved, added and
  removed ops marked in colour.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..api import SpecLike, as_network, check
from ..diff.compare import facts_of
from ..diff.opdiff import same_op, views
from ..lang import ast
from ..lang.errors import ResourceError
from .transfer import align_moves, id_of

BOX_W, BOX_H, STEP = 3.2, 0.62, 0.92
COLOURS = {"same": "#f4f4f4", "changed": "#ffd59e", "moved": "#b9d7f7", "added": "#bfe8bf", "removed": "#f6bcbc"}
FAMILY = {"conv": "#dbe8f6", "linear": "#dbe8f6", "norm": "#fbeed0", "act": "#e3f2df", "pool": "#ececec",
          "scale": "#efe2f5", "drop": "#efe2f5", "attn": "#f9d9e6", "token": "#e6e0f7", "reshape": "#ececec"}


def _text(op: ast.Op) -> str:
    return " ".join([op.name.text, *(w.text for w in op.args)])


@dataclass
class Item:
    """One row of a block drawing: an op, or the add closing a residual."""

    op: ast.Op | None
    label: str
    channels: str = ""
    family: str = ""
    depth: int = 0                  # residual nesting
    status: str = "same"
    join: str = "+"                 # for the row closing a branch: "+" (residual), "x" (gate),
                                    # "c" (concat) or "-" (subtract)


_JOIN_SIGN = {"+": "+", "x": "\u00d7", "c": "\u2016", "-": "\u2212"}  # +, times, double bar, minus


@dataclass
class Skip:
    start: int                      # row index of the branch's first op
    add: int                        # row index of its add
    shortcut: list[Item] = field(default_factory=list)
    depth: int = 0
    note: str = ""                  # text on the skip arrow without shortcut ops


def _channels(ir, use_prefix: str) -> dict[tuple, tuple[int, int]]:
    """op span -> (in channels, out channels) where it runs at `use_prefix`."""
    out = {}
    for _, d in ir.op_nodes():
        if d["path"].startswith(use_prefix):
            out[id_of(d["span"])] = (d["meta"]["in_shape"][0], d["meta"]["shape"][0], _attention(d))
    return out


def _attention(d) -> str:
    """`3 heads, 7x7 windows` for an attention op, "" for any other."""
    a = d.get("attrs")
    if d["op"] not in ("wattn", "mhsa") or a is None:
        return ""
    heads = a.heads or (d["meta"]["in_shape"][0] // a.head_dim if a.head_dim else None)
    text = f"{heads} heads" if heads else ""
    if d["op"] == "wattn" and a.kernel:
        text += f", {a.kernel}x{a.kernel} windows" + (", shifted on odd blocks" if a.shift else "")
    return text


def _rows(body: tuple, chans: dict, family_of, values: dict | None = None) -> tuple[list[Item], list[Skip]]:
    """A block's rows; `values`: the drawn stage's per-stage values, so `dwconvk` reads `dwconv5`."""
    from ..lang.to_ir import substitute

    items: list[Item] = []
    skips: list[Skip] = []

    def walk(stmts, depth: int, cond: str = "") -> None:
        for s in stmts:
            if isinstance(s, ast.Residual):
                start = len(items)
                walk(s.body, depth + 1, cond)
                shortcut = [_item(o, chans, family_of, depth + 1) for o in (s.shortcut or ())
                            if isinstance(o, ast.Op)]
                items.append(Item(None, "+", depth=depth))
                note = "residual where\nshapes match" if s.shortcut is None and s.shortcut_none is not None else ""
                skips.append(Skip(start, len(items) - 1, shortcut, depth, note))
            elif isinstance(s, ast.Gate):  # x * f(x): the input goes round the branch to the multiply
                start = len(items)
                walk(s.body, depth + 1, cond)
                items.append(Item(None, "x", depth=depth, join="x"))
                skips.append(Skip(start, len(items) - 1, [], depth, "gate: input x branch"))
            elif isinstance(s, ast.Join):  # the input goes round the branch to the concat / minus
                start = len(items)
                walk(s.body, depth + 1, cond)
                sign, note = ("c", "concat: input | branch") if s.kind == "concat" else ("-", "branch - input")
                items.append(Item(None, sign, depth=depth, join=sign))
                skips.append(Skip(start, len(items) - 1, [], depth, note))
            elif isinstance(s, ast.Guard):
                walk(s.body, depth, f"if {s.name.text} {s.cmp.text} {s.value.text}")
            else:
                items.append(_item(substitute(s, values or {}), chans, family_of, depth, cond))

    walk(body, 0)
    return items, skips


def _item(op: ast.Op, chans: dict, family_of, depth: int, cond: str = "") -> Item:
    c = chans.get(id_of(op.span))
    text = f"{c[0]} -> {c[1]}" if c and c[0] != c[1] else (str(c[0]) if c else "")
    if c and c[2]:
        text += f", {c[2]}"
    if cond:  # a guarded op: its condition, and "absent here" where this stage leaves it out
        text = f"{cond}: " + (text or "absent in this stage")
    return Item(op, _text(op), text, family_of(op), depth)


def _family_of(op: ast.Op) -> str:
    from ..lang.to_ir import lookup_op
    try:
        return lookup_op(op.name)[0].family
    except Exception:  # noqa: BLE001 - an op that does not resolve is drawn plain
        return ""


def _draw_block(ax, x0: float, y0: float, title: str, items: list[Item], skips: list[Skip],
                colour_by_status: bool) -> dict[int, float]:
    """Draws a block's rows downward from y0 at x0 (box centre); returns row -> y."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Circle

    ax.text(x0, y0 + 0.75, title, ha="center", va="bottom", fontsize=10, fontweight="bold")
    if items:  # the block's input
        first = BOX_H / 2 if items[0].op is not None else 0.2
        ax.add_patch(FancyArrowPatch((x0, y0 + 0.62), (x0, y0 + first), arrowstyle="-|>", mutation_scale=9,
                                     lw=1.0, color="#333333", zorder=1))
    ys = {}
    for k, it in enumerate(items):
        y = y0 - k * STEP
        ys[k] = y
        if it.op is None:  # the residual's add
            ax.add_patch(Circle((x0, y), 0.2, fc="white", ec="black", lw=1.2, zorder=3))
            ax.text(x0, y, _JOIN_SIGN[it.join], ha="center", va="center", fontsize=12, zorder=4)
        else:
            fc = COLOURS[it.status] if colour_by_status else FAMILY.get(it.family, "#f4f4f4")
            ax.add_patch(FancyBboxPatch((x0 - BOX_W / 2, y - BOX_H / 2), BOX_W, BOX_H,
                                        boxstyle="round,pad=0.02,rounding_size=0.12", fc=fc, ec="#444444",
                                        lw=1.0, zorder=2))
            ax.text(x0, y + 0.07, it.label, ha="center", va="center", fontsize=9, family="monospace", zorder=3)
            if it.channels:
                ax.text(x0, y - 0.19, it.channels, ha="center", va="center", fontsize=7, color="#555555", zorder=3)
            if colour_by_status and it.status != "same":
                ax.text(x0 + BOX_W / 2 + 0.1, y, it.status, ha="left", va="center", fontsize=7, color="#333333")
        if k + 1 < len(items):
            top = y - (0.2 if it.op is None else BOX_H / 2)
            nxt = y - STEP + (0.2 if items[k + 1].op is None else BOX_H / 2)
            ax.add_patch(FancyArrowPatch((x0, top), (x0, nxt), arrowstyle="-|>", mutation_scale=9, lw=1.0,
                                         color="#333333", zorder=1))
    deepest = max((s.depth for s in skips), default=0)
    for s in skips:  # the skip arrow: from above the branch's first op around the left to the add
        left = x0 - BOX_W / 2 - 0.35 - 0.4 * (deepest - s.depth) - (0.4 if s.shortcut else 0)  # outer further out
        top = ys[s.start] + (0.62 + BOX_H / 2) / 2
        bottom = ys[s.add]
        ax.plot([x0, left, left], [top, top, bottom], color="#333333", lw=1.0, zorder=1,
                ls="--" if s.note.startswith("residual") else "-")
        ax.add_patch(FancyArrowPatch((left, bottom), (x0 - 0.2, bottom), arrowstyle="-|>", mutation_scale=9,
                                     lw=1.0, color="#333333", zorder=1))
        if s.shortcut:
            mid = (top + bottom) / 2
            label = ", ".join(i.label for i in s.shortcut)
            chans = next((i.channels for i in s.shortcut if i.channels), "")
            ax.text(left, mid, f"shortcut: {label}\n(where the shape changes)" + (f"\n{chans}" if chans else ""),
                    ha="center", va="center",
                    fontsize=7, family="monospace", rotation=90,
                    bbox=dict(boxstyle="round,pad=0.25", fc="#fff8e6", ec="#444444", lw=0.8), zorder=3)
        elif s.note:
            ax.text(left, (top + bottom) / 2, s.note, ha="center", va="center", fontsize=7, rotation=90,
                    bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none"), zorder=3)
    return ys


def _column(net, ir) -> list[tuple[str, str, str]]:
    """The network as rows: (section, what, output shape)."""
    shapes = {}
    for nid, d in ir.op_nodes():
        while len(ir.users(nid)) == 1 and not ir.g.nodes[ir.users(nid)[0]]["path"] \
                and ir.g.nodes[ir.users(nid)[0]]["op"] != "output":  # what a join after it gives
            nid = ir.users(nid)[0]
        shapes[d["path"]] = ir.g.nodes[nid]["meta"]["shape"]

    def shape_of(prefix: str) -> str:
        last = [s for p, s in shapes.items() if p.startswith(prefix)]
        return "x".join(map(str, last[-1])) if last else ""

    rows = [("input", "x".join(map(str, net.input)), "")]
    rows.append(("stem", ", ".join(_text(o) for o in net.stem if isinstance(o, ast.Op)), shape_of("stem.")))
    for i, st in enumerate(net.stages):
        if i > 0 and net.downsample:
            rows.append(("downsample", ", ".join(_text(o) for o in net.downsample), shape_of(f"downsample.{i}.")))
        stride = f", s{st.stride}" if st.stride != 1 else ""
        rows.append((f"stage {i + 1}", f"{st.block} x{st.depth}{stride}", shape_of(f"stages.{i}.")))
    rows.append(("head", ", ".join(_text(o) for o in net.head if isinstance(o, ast.Op)), shape_of("head.")))
    return rows


DPI = 110
MAX_INCHES = 300  # 33,000 pixels at DPI: a picture no viewer shows whole, and gigabytes to render


def _save(fig, path: Path) -> str:
    """Render into a temporary beside `path`, then rename: a failed render never leaves half a file."""
    import matplotlib
    import matplotlib.pyplot as plt

    from ..atomic import atomic_write

    try:
        atomic_write(path, lambda f: fig.savefig(f, format=path.suffix[1:].lower(), dpi=DPI,
                                                 bbox_inches="tight", facecolor="white"))
    finally:
        plt.close(fig)
        matplotlib.rcParams["text.parse_math"] = fig._archdsl_parse_math
    return f"{path.suffix[1:].upper()}"


def _figure(width: float, height: float):
    """A blank figure, refused before anything is drawn when it would be too large to render.
    User text is never markup: mathtext is off while archdsl draws (`$x^2$` prints as typed)."""
    if max(width, height) > MAX_INCHES:
        raise ResourceError(f"the diagram would be {width * DPI:,.0f} x {height * DPI:,.0f} pixels; the most "
                            f"archdsl draws is {MAX_INCHES * DPI:,} on a side",
                            hint="draw a smaller variant (`--set depths=...`), or fewer block kinds", code="E903")
    import matplotlib

    matplotlib.use("Agg", force=False) if matplotlib.get_backend().lower() != "agg" else None
    import matplotlib.pyplot as plt

    parse_math = matplotlib.rcParams["text.parse_math"]
    matplotlib.rcParams["text.parse_math"] = False
    fig, ax = plt.subplots(figsize=(width, height))
    fig._archdsl_parse_math = parse_math
    ax.set_axis_off()
    ax.set_aspect("equal")
    return fig, ax


def draw_network(spec: SpecLike, path: str | Path, **overrides) -> str:
    """Write the network's diagram to `path` (.svg or .png); returns a short description."""
    net = as_network(spec, **overrides)
    _, ir = check(net)
    path = Path(path)
    column = _column(net, ir)
    kinds: list[tuple[str, int]] = []
    for i, st in enumerate(net.stages):
        if st.block not in [k for k, _ in kinds]:
            kinds.append((st.block, i))
    drawn = []
    for name, i in kinds:
        items, skips = _rows(net.blocks[name].body, _channels(ir, f"stages.{i}.blocks.0."), _family_of,
                             net.stages[i].values)
        drawn.append((name, i, items, skips))
    rows = max([len(column)] + [len(d[2]) + 1 for d in drawn])
    height = rows * STEP + 2.0
    longest = max(len(f"{section}: {what}") for section, what, _ in column)
    width = max(3.5, 0.105 * longest + 0.5) + 1.2 + len(drawn) * (BOX_W + 1.8)
    fig, ax = _figure(width * 0.85, height * 0.85)
    # the column
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    longest = max(len(f"{section}: {what}") for section, what, _ in column)
    col_w = max(3.5, 0.105 * longest + 0.5)
    cx, top = col_w / 2 + 0.1, 0.0
    col_step = (rows * STEP) / max(len(column), 1)
    col_step = min(max(col_step, STEP), 1.3)
    for k, (section, what, shape) in enumerate(column):
        y = top - k * col_step
        stage = section.startswith("stage")
        fc = "#dbe8f6" if stage else "#fbeed0" if section in ("stem", "head") else "#ececec" \
            if section == "downsample" else "white"
        ax.add_patch(FancyBboxPatch((cx - col_w / 2, y - BOX_H / 2), col_w, BOX_H, boxstyle="round,pad=0.02,rounding_size=0.12",
                                    fc=fc, ec="#444444", lw=1.0))
        ax.text(cx, y + 0.08, f"{section}: {what}" if section != "input" else f"input {what}", ha="center",
                va="center", fontsize=8.5, family="monospace")
        if shape:
            ax.text(cx, y - 0.2, shape, ha="center", va="center", fontsize=7, color="#555555")
        if k + 1 < len(column):
            ax.add_patch(FancyArrowPatch((cx, y - BOX_H / 2), (cx, y - col_step + BOX_H / 2), arrowstyle="-|>",
                                         mutation_scale=9, lw=1.0, color="#333333"))
    ax.text(cx, top + 0.75, f"{net.name}  ({net.classes} classes)", ha="center", va="bottom", fontsize=11,
            fontweight="bold")
    # each block kind, once
    x = cx + col_w / 2 + 1.7 + BOX_W / 2
    for name, i, items, skips in drawn:
        _draw_block(ax, x, top, f"block {name}  (stage {i + 1}, width {net.stages[i].width})", items, skips, False)
        x += BOX_W + 1.8
    ax.set_xlim(-0.1, x - BOX_W / 2 - 0.6)
    ax.set_ylim(top - (rows - 0.4) * STEP - 0.3, top + 1.3)
    return _save(fig, path) + f", {len(column)} sections, {len(drawn)} block kind{'s' if len(drawn) != 1 else ''}"


def draw_diff(a: SpecLike, b: SpecLike, path: str | Path, **overrides) -> str:
    """Two networks' stage-1 blocks side by side, the diff's pairs joined and the changes marked."""
    from matplotlib.lines import Line2D

    na, nb = as_network(a, **overrides), as_network(b, **overrides)
    (_, ia), (_, ib) = check(na), check(nb)
    block_a, block_b = na.blocks[na.stages[0].block], nb.blocks[nb.stages[0].block]
    items_a, skips_a = _rows(block_a.body, _channels(ia, "stages.0.blocks.0."), _family_of, na.stages[0].values)
    items_b, skips_b = _rows(block_b.body, _channels(ib, "stages.0.blocks.0."), _family_of, nb.stages[0].values)
    pairs = align_moves(views(block_a.body, facts_of(ia), (0,)), views(block_b.body, facts_of(ib), (0,)))
    by_a = {id_of(x.op.span): (y, moved) for x, y, moved in pairs}
    by_b = {id_of(y.op.span): (x, moved) for x, y, moved in pairs}
    for it in items_a:
        if it.op is not None:
            it.status = "same" if id_of(it.op.span) in by_a else "removed"
    counts = {"changed": 0, "moved": 0, "added": 0, "removed": sum(i.status == "removed" for i in items_a)}
    for it in items_b:
        if it.op is None:
            continue
        hit = by_b.get(id_of(it.op.span))
        if hit is None:
            it.status = "added"
        else:
            other, moved = hit
            y_view = next(y for x, y, _ in pairs if id_of(y.op.span) == id_of(it.op.span))
            it.status = "moved" if moved else "same" if same_op(other, y_view) else "changed"
            if not same_op(other, y_view) and moved:
                it.status = "moved"
        if it.status in counts:
            counts[it.status] += 1
    status_b = {id_of(it.op.span): it.status for it in items_b if it.op is not None}
    for it in items_a:  # a paired op shows its partner's status on both sides
        if it.op is not None and id_of(it.op.span) in by_a:
            it.status = status_b.get(id_of(by_a[id_of(it.op.span)][0].op.span), "same")
    rows = max(len(items_a), len(items_b))
    gap = 3.4
    fig, ax = _figure((2 * BOX_W + gap + 2.4) * 0.9, (rows * STEP + 2.4) * 0.9)
    xa, xb = 0.0, BOX_W + gap
    ya = _draw_block(ax, xa, 0.0, f"{na.name}: block {na.stages[0].block}", items_a, skips_a, True)
    yb = _draw_block(ax, xb, 0.0, f"{nb.name}: block {nb.stages[0].block}", items_b, skips_b, True)
    row_a = {id_of(it.op.span): k for k, it in enumerate(items_a) if it.op is not None}
    row_b = {id_of(it.op.span): k for k, it in enumerate(items_b) if it.op is not None}
    for x, y, _ in pairs:
        ka, kb = row_a.get(id_of(x.op.span)), row_b.get(id_of(y.op.span))
        if ka is not None and kb is not None:
            ax.plot([xa + BOX_W / 2 + 0.02, xb - BOX_W / 2 - 0.02], [ya[ka], yb[kb]], color="#9a9a9a", lw=0.8, ls=":",
                    zorder=0)
    legend = [Line2D([0], [0], marker="s", ls="", markersize=9, markerfacecolor=COLOURS[k], markeredgecolor="#444444",
                     label=f"{k} ({counts[k]})" if k in counts else "unchanged")
              for k in ("same", "changed", "moved", "added", "removed")]
    ax.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=5, fontsize=8, frameon=False)
    ax.set_xlim(xa - BOX_W / 2 - 1.4, xb + BOX_W / 2 + 0.9)
    ax.set_ylim(-(rows - 0.4) * STEP - 0.2, 1.3)
    changes = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    return _save(fig, Path(path)) + f", {changes or 'no op changed'}"
