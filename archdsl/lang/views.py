"""How archdsl's objects show in a notebook (`_repr_html_`) and at a prompt (`__repr__`, a few
lines that fit a screen). Each class keeps a two-line method that calls a function here; the
functions read their object's attributes only, so a class of any room (`Report`, `Diff`,
`TrainResult`) can use them without this module importing its room.

Also the pieces they share: an HTML table, a column diagram of a network as inline SVG, and
text clipped to a screen. User text (names, paths, op words) is always escaped."""
from __future__ import annotations

from html import escape

from .errors import display_path

SCREEN_LINES, SCREEN_COLUMNS = 24, 100
_STYLE = ("border-collapse:collapse;font-family:ui-monospace,monospace;font-size:12px",
          "padding:1px 8px;text-align:left;border-bottom:1px solid #ddd")


# ---------------------------------------------------------------- shared pieces
def table(header: list[str], rows: list[list[str]], right: tuple[int, ...] = ()) -> str:
    """An HTML table; cells are escaped; columns in `right` are right-aligned (numbers)."""
    def cell(tag: str, i: int, text: str) -> str:
        align = ";text-align:right" if i in right else ""
        return f"<{tag} style='{_STYLE[1]}{align}'>{escape(str(text))}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table style='{_STYLE[0]}'><tr>{head}</tr>{body}</table>"


def text_table(header: list[str], rows: list[list[str]], right: tuple[int, ...] = ()) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)  # noqa: E731
                              for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    return [fmt(header), *map(fmt, rows)]


def screen(lines: list[str]) -> str:
    """Lines clipped to a screen: at most SCREEN_LINES of at most SCREEN_COLUMNS characters."""
    if len(lines) > SCREEN_LINES:
        lines = lines[:SCREEN_LINES - 1] + [f"... ({len(lines) - SCREEN_LINES + 1} more lines)"]
    return "\n".join(line if len(line) <= SCREEN_COLUMNS else line[:SCREEN_COLUMNS - 3] + "..." for line in lines)


def op_text(op) -> str:
    return " ".join([op.name.text, *(w.text for w in op.args)])


def _shape(shape) -> str:
    return "x".join(map(str, shape))


def column_svg(rows: list[tuple[str, str, float]]) -> str:
    """A network as the paper draws it: a column of boxes top to bottom, each (label, note,
    relative width in 0..1), joined by arrows. Inline SVG, no external files."""
    box_h, gap, width, left = 24, 12, 560, 10
    height = len(rows) * (box_h + gap) + gap
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
             f"font-family='ui-monospace,monospace' font-size='11'>"]
    for i, (label, note, rel) in enumerate(rows):
        y = gap + i * (box_h + gap)
        w = 120 + 200 * max(0.0, min(rel, 1.0))
        parts.append(f"<rect x='{left}' y='{y}' width='{w:.0f}' height='{box_h}' rx='3' fill='#dbe8f6' "
                     f"stroke='#555'/><text x='{left + 6}' y='{y + 16}'>{escape(label)}</text>"
                     f"<text x='{left + w + 8:.0f}' y='{y + 16}' fill='#444'>{escape(note)}</text>")
        if i:
            parts.append(f"<line x1='{left + 20}' y1='{y - gap}' x2='{left + 20}' y2='{y}' stroke='#555'/>")
    return "".join(parts) + "</svg>"


# ---------------------------------------------------------------- Network
def _stage_rows(net) -> list[list[str]]:
    return [[f"stage {i + 1}", str(s.width), s.block, f"x{s.depth}", f"s{s.stride}" if s.stride != 1 else ""]
            for i, s in enumerate(net.stages)]


def network_text(net) -> str:
    chain = f" extends {net.chain[0]}" if net.chain else ""
    lines = [f"Network {net.name}{chain}: input {_shape(net.input)}, {net.classes} classes ({display_path(net.path)})"]
    if net.stem:
        lines.append("  stem        " + ", ".join(map(op_text, net.stem)))
    if net.downsample:
        lines.append("  downsample  " + ", ".join(map(op_text, net.downsample)))
    lines += ["  " + line for line in text_table(["", "width", "block", "depth", "stride"], _stage_rows(net), (1,))]
    if net.head:
        lines.append("  head        " + ", ".join(map(op_text, net.head)))
    if net.taps:
        lines.append("  taps        " + ", ".join(w.text for w in net.taps))
    lines.append("  (archdsl.analyze(net) for shapes and costs)")
    return screen(lines)


def _block_ops(stmts, depth: int = 0) -> list[str]:
    out = []
    for s in stmts:
        kind = type(s).__name__
        if kind == "Op":
            out.append("  " * depth + op_text(s))
        elif kind == "Residual":
            out += ["  " * depth + "residual {", *_block_ops(s.body, depth + 1), "  " * depth + "}"]
        elif kind in ("Gate", "Join"):
            word = s.kind if kind == "Join" else "gate"
            out += ["  " * depth + word + " {", *_block_ops(s.body, depth + 1), "  " * depth + "}"]
        elif kind == "Guard":
            out += ["  " * depth + f"if {s.name.text} {s.cmp.text} {s.value.text} {{", *_block_ops(s.body, depth + 1),
                    "  " * depth + "}"]
    return out


def network_diagram(net, report=None) -> str:
    widest = max(s.width for s in net.stages) or 1
    stages = {s.name: s for s in report.stages} if report is not None else {}

    def note(name: str) -> str:
        row = stages.get(name)
        return f"{_shape(row.shape)} · {row.params / 1e6:.2f}M params · {row.macs / 1e9:.2f} GMACs" if row else ""

    rows = [(f"input {_shape(net.input)}", "", 0.0)]
    if net.stem:
        rows.append(("stem: " + ", ".join(map(op_text, net.stem)), note("stem"), 0.1))
    for i, s in enumerate(net.stages):
        rows.append((f"{s.width} {s.block} x{s.depth}" + (f" s{s.stride}" if s.stride != 1 else ""),
                     note(f"stage {i + 1}"), (s.width / widest) ** 0.5))
    if net.head:
        rows.append(("head: " + ", ".join(map(op_text, net.head)), note("head"), 0.1))
    return column_svg(rows)


def network_html(net) -> str:
    chain = f" extends <b>{escape(net.chain[0])}</b>" if net.chain else ""
    blocks = "".join(f"<div style='display:inline-block;vertical-align:top;margin-right:24px'><b>block "
                     f"{escape(name)}</b><pre style='margin:2px 0'>{escape(chr(10).join(_block_ops(b.body)))}</pre></div>"
                     for name, b in net.blocks.items() if name in {s.block for s in net.stages})
    return (f"<div><b>{escape(net.name)}</b>{chain}: input {_shape(net.input)}, {net.classes} classes "
            f"<span style='color:#777'>({escape(display_path(net.path))})</span>"
            + table(["", "width", "block", "depth", "stride"], _stage_rows(net), (1,))
            + f"<div>{blocks}</div>{network_diagram(net)}</div>")


# ---------------------------------------------------------------- Report
def _report_rows(report) -> list[list[str]]:
    return [[s.name, _shape(s.shape), f"{s.params:,}", f"{s.macs / 1e9:.3f}"] for s in report.stages]


def report_text(report) -> str:
    net = report.network
    lines = [f"Report {net.name}: {report.params:,} params, {report.macs / 1e9:.2f} GMACs at {_shape(net.input)}"]
    lines += ["  " + line for line in text_table(["", "output", "params", "GMACs"], _report_rows(report), (2, 3))]
    lines.append(f"  ({len(report.layers)} layers in .layers; peak activation {report.peak_activation:,} values per image)")
    return screen(lines)


def report_html(report) -> str:
    net = report.network
    return (f"<div><b>{escape(net.name)}</b>: {report.params:,} params, {report.macs / 1e9:.2f} GMACs at "
            f"{_shape(net.input)}, {len(report.layers)} layers"
            + table(["", "output", "params", "GMACs"], _report_rows(report)
                    + [["total", "", f"{report.params:,}", f"{report.macs / 1e9:.3f}"]], (2, 3))
            + network_diagram(net, report) + "</div>")


# ---------------------------------------------------------------- Patch
def patch_text(patch) -> str:
    return screen(str(patch).rstrip("\n").split("\n"))


def patch_html(patch) -> str:
    head = f"change {patch.parent} -> {patch.step}" if patch.parent else f"change of {patch.step}"
    rows = [[e.kind, e.describe()] for e in patch.edits]
    return f"<div><b>{escape(head)}</b>" + (table(["edit", "what"], rows) if rows else ": none") + "</div>"


# ---------------------------------------------------------------- Roadmap
def _roadmap_rows(rm) -> list[list[str]]:
    return [["  " * r.level + r.step, f"{r.params / 1e6:.1f}M", f"{r.macs / 1e9:.2f}",
             f"{r.paper_top1:.1f}" if r.paper_top1 is not None else "", r.change] for r in rm.rows]


def roadmap_text(rm) -> str:
    lines = [f"Roadmap {display_path(rm.dir)}: {len(rm.rows)} steps"]
    lines += ["  " + line for line in text_table(["step", "params", "GMACs", "paper top-1", "change"],
                                                 _roadmap_rows(rm), (1, 2, 3))]
    return screen(lines)


def roadmap_html(rm) -> str:
    return (f"<div><b>{escape(display_path(rm.dir))}</b>: {len(rm.rows)} steps"
            + table(["step", "params", "GMACs", "paper top-1 (%)", "change"], _roadmap_rows(rm), (1, 2, 3)) + "</div>")
