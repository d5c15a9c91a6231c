"""AST -> text: a spec in canonical form (what `archdsl fmt` prints).

    text = format_spec(parse(src))          # parse(text) equals parse(src) but for spans
    same(parse(text), parse(src))           # the equality a round trip keeps

Canonical form: sections in the order `network`, let, require, input, classes, blocks, stem, downsample,
stages, head, taps, init, train, set lines; four spaces per level; ops that were written on one
line stay on one line, joined by `, `; taps on one line, joined by `, `; the one-line sections'
keywords padded to one column (`input`/`classes` to 8, `stem`/`downsample`/`head`/`taps`/`init`
to the longest of them + 1, at least 7); stage lines in columns. Layout taken from the source: comments (a trailing
comment keeps its column where the code leaves room) and single blank lines (runs collapse
to one). An AST built in memory (no source text behind it) gets a blank line between groups
and ops grouped the way one writes them (`dwconv7 stride, bn, relu`). A `gate { }` or
`if t > 1 { }` whose body is ops stays on one line where the source has it so (always, without
source): `if t > 1 { conv1 tx in, bn, relu6 }`; a `residual { }` keeps its lines.

One small function per node kind, dispatched on the node's type in `_STMT`; a node kind this
printer does not know is a `TypeError`, never text silently dropped.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import ast
from .errors import SOURCES

INDENT = 4
_LINE_SECTIONS = ("stem", "downsample", "head", "taps", "init")


@dataclass
class Line:
    text: str                 # without its indent
    indent: int = 0
    lo: int | None = None     # the source lines it came from (comments and blank lines follow them)
    hi: int | None = None
    group: bool = False       # starts a group: a blank line before it when there is no source layout
    comment_indent: int | None = None  # where own-line comments just before it go (inside a `}`)


# ---- one function per node kind ---------------------------------------------------------

def op(o: ast.Op) -> str:
    return " ".join([o.name.text, *(a.text for a in o.args)])


def op_list(ops: tuple[ast.Op, ...]) -> str:
    return ", ".join(op(o) for o in ops)


def _residual(r: ast.Residual, indent: int, layout: bool) -> list[Line]:
    if r.shortcut:
        lo, hi = _lines_of(r.shortcut[0].span, first=True)[0], _lines_of(r.shortcut[-1].span)[1]
        tail, tail_span = f"}} shortcut {op_list(r.shortcut)}", (lo, hi)
    elif r.shortcut_none is not None:
        tail, tail_span = "} shortcut none", _lines_of(r.shortcut_none.span)
    else:
        end = r.span.end_line if r.span else None
        tail, tail_span = "}", (end, end)
    return _braced("residual", r.body, tail, tail_span, r.span, indent, layout, inline_bare=False)


def _gate(g: ast.Gate, indent: int, layout: bool) -> list[Line]:
    end = g.span.end_line if g.span else None
    return _braced("gate", g.body, "}", (end, end), g.span, indent, layout)


def _join(j: ast.Join, indent: int, layout: bool) -> list[Line]:
    end = j.span.end_line if j.span else None
    return _braced(j.kind, j.body, "}", (end, end), j.span, indent, layout)


def _guard(g: ast.Guard, indent: int, layout: bool) -> list[Line]:
    end = g.span.end_line if g.span else None
    head = f"if {g.name.text} {g.cmp.text} {g.value.text}"
    return _braced(head, g.body, "}", (end, end), g.span, indent, layout)


def _braced(head: str, stmts: tuple, tail: str, tail_span: tuple, span, indent: int, layout: bool,
            inline_bare: bool = True) -> list[Line]:
    """`HEAD { body } TAIL`. A body of ops only, or one gate, join or guard that is itself on one
    line (`if t > 1 { gate { gap, conv1 0.25x, relu, conv1, sigmoid } }`), stays on one line where
    the source wrote it so, or, for an AST without source (`inline_bare`), always."""
    inner = _inline(stmts)
    one_line = (span is not None and span.line == span.end_line) if layout else inline_bare
    if inner is not None and one_line:
        closing = tail[1:]  # what follows the `}`: ` shortcut ...` or nothing
        lo, hi = _lines_of(span)
        return [Line(f"{head} {{ {inner} }}{closing}", indent, lo, hi)]
    lines = [Line(f"{head} {{", indent, *_lines_of(span, first=True))]
    lines += body(stmts, indent + INDENT, layout)
    return lines + [Line(tail, indent, *tail_span, comment_indent=indent + INDENT)]


def _inline(stmts: tuple) -> str | None:
    """A body as one line, where the grammar reads it back: ops, or one braced statement whose
    own body is one line."""
    if stmts and all(isinstance(s, ast.Op) for s in stmts):
        return op_list(stmts)
    if len(stmts) == 1 and isinstance(stmts[0], (ast.Gate, ast.Join, ast.Guard)):
        s = stmts[0]
        head = ("gate" if isinstance(s, ast.Gate) else s.kind if isinstance(s, ast.Join)
                else f"if {s.name.text} {s.cmp.text} {s.value.text}")
        inner = _inline(s.body)
        return f"{head} {{ {inner} }}" if inner is not None else None
    return None


def _op_run(ops: list[ast.Op], indent: int, layout: bool) -> list[Line]:
    """Consecutive ops of a body: one line per source line, or per unit without layout."""
    groups: list[list[ast.Op]] = []
    for o in ops:
        if groups and (_same_line(groups[-1][-1], o) if layout else not _computes(o)):
            groups[-1].append(o)
        else:
            groups.append([o])
    return [Line(op_list(tuple(g)), indent, g[0].span.line, g[-1].span.end_line) for g in groups]


# Statement kinds a body may hold. A construct added to the language adds its printer here.
_STMT = {ast.Residual: _residual, ast.Gate: _gate, ast.Guard: _guard, ast.Join: _join}


def body(stmts: tuple, indent: int, layout: bool) -> list[Line]:
    lines: list[Line] = []
    run: list[ast.Op] = []
    for s in stmts:
        if isinstance(s, ast.Op):
            run.append(s)
            continue
        lines += _op_run(run, indent, layout)
        run = []
        printer = _STMT.get(type(s))
        if printer is None:
            raise TypeError(f"the printer has no rule for a `{type(s).__name__}` statement")
        lines += printer(s, indent, layout)
    return lines + _op_run(run, indent, layout)


def block(b: ast.Block, layout: bool) -> list[Line]:
    params = f"({', '.join(p.text for p in b.params)})" if b.params else ""
    lines = [Line(f"block {b.name.text}{params} {{", 0, *_lines_of(b.span, first=True), group=True)]
    lines += body(b.body, INDENT, layout)
    return lines + [Line("}", 0, b.span.end_line, b.span.end_line, comment_indent=INDENT)]


def stages(items: tuple[ast.Stage, ...], span, group: bool) -> list[Line]:
    wide = max((len(s.width.text) for s in items), default=0) + 1
    name = max((len(s.block.text) for s in items), default=0) + 1
    lines = [Line("stages {", 0, *_lines_of(span, first=True), group=group)]
    for s in items:
        text = s.width.text.ljust(wide) + s.block.text.ljust(name) + " ".join([s.depth.text, *(a.text for a in s.args)])
        lines.append(Line(text.rstrip(), INDENT, s.span.line, s.span.end_line))
    end = span.end_line if span else None
    return lines + [Line("}", 0, end, end, comment_indent=INDENT)]


def taps(words: tuple[ast.Word, ...]) -> str:
    return ", ".join(w.text for w in words)


def setting(s: ast.Setting) -> str:
    return " ".join([s.key.text, ", ".join(" ".join(w.text for w in g) for g in s.groups)]).rstrip()


def train(items: tuple[ast.Setting, ...], span) -> list[Line]:
    lines = [Line("train {", 0, *_lines_of(span, first=True), group=True)]
    lines += [Line(setting(s), INDENT, s.span.line, s.span.end_line) for s in items]
    end = span.end_line if span else None
    return lines + [Line("}", 0, end, end, comment_indent=INDENT)]


def set_line(s: ast.SetLine, group: bool) -> Line:
    return Line(f"set {s.key.text} {s.value}", 0, s.span.line, s.span.end_line, group=group)


def lets(items: tuple[ast.LetLine, ...], span) -> list[Line]:
    """`let { NAME = EXPR }`, the `=` signs in one column."""
    wide = max((len(x.name.text) for x in items), default=0)
    lines = [Line("let {", 0, *_lines_of(span, first=True), group=True)]
    lines += [Line(f"{x.name.text.ljust(wide)} = {x.expr.text}", INDENT, x.span.line, x.span.end_line) for x in items]
    end = span.end_line if span else None
    return lines + [Line("}", 0, end, end, comment_indent=INDENT)]


def requires(items: tuple[ast.Word, ...], span) -> list[Line]:
    lines = [Line("require {", 0, *_lines_of(span, first=True), group=True)]
    lines += [Line(x.text, INDENT, x.span.line, x.span.end_line) for x in items]
    end = span.end_line if span else None
    return lines + [Line("}", 0, end, end, comment_indent=INDENT)]


def header(spec: ast.SpecFile) -> Line:
    ext = f" extends {spec.extends.text}" if spec.extends else ""
    return Line(f"network {spec.name.text}{ext}", 0, spec.name.span.line, spec.name.span.line)


# ---- the file -----------------------------------------------------------------------------

def spec_lines(spec: ast.SpecFile, layout: bool = True) -> list[Line]:
    """The file as lines, sections in canonical order."""
    lines = [header(spec)]
    if spec.lets is not None:
        lines += lets(spec.lets, spec.lets_span)
    if spec.requires is not None:
        lines += requires(spec.requires, spec.requires_span)
    first = True
    for key in ("input", "classes"):
        value = getattr(spec, key)
        if value is not None:
            lines.append(Line(f"{key.ljust(8)}{value.text}", 0, value.span.line, value.span.end_line, group=first))
            first = False
    for b in spec.blocks.values():
        lines += block(b, layout)
    present = [k for k in _LINE_SECTIONS if getattr(spec, k) is not None]
    pad = max([7] + [len(k) + 1 for k in present])
    first = True
    for key in ("stem", "downsample", "stages", "head", "taps", "init"):
        value = getattr(spec, key)
        if value is None:
            continue
        if key == "stages":
            lines += stages(value, spec.stages_span, group=first)
        elif key == "taps":
            lines.append(Line(key.ljust(pad) + taps(value), 0, value[0].span.line, value[-1].span.end_line,
                              group=first))
        elif key == "init":
            lines.append(Line(key.ljust(pad) + setting(value), 0, value.span.line, value.span.end_line, group=first))
        else:
            lo = value[0].span.line if value else None
            hi = value[-1].span.end_line if value else None
            lines.append(Line((key.ljust(pad) + op_list(value)).rstrip(), 0, lo, hi, group=first))
        first = False
    if spec.train is not None:
        lines += train(spec.train, spec.train_span)
    lines += [set_line(s, group=i == 0) for i, s in enumerate(spec.sets)]
    return lines


def format_spec(spec: ast.SpecFile, layout: bool = True) -> str:
    """The spec as canonical text. `layout=False` ignores the source (its comments, blank lines
    and line breaks): for an AST assembled from several files, as `flatten` and `apply` do."""
    lines = spec_lines(spec, layout)
    source = SOURCES.get(spec.path, "").split("\n") if layout else []
    comments = list(spec.comments) if layout else []

    def blank_before(n: int | None) -> bool:
        return n is not None and 2 <= n <= len(source) and not source[n - 2].strip()

    out: list[str] = []

    def emit(text: str) -> None:
        if text or (out and out[-1]):
            out.append(text)

    # Each comment goes with a line of code: a trailing one with the line it ends, one on a line
    # of its own with the next line of code in the source (so it moves with a reordered section).
    leading: dict[int, list[ast.Comment]] = {}
    trailing: dict[int, list[ast.Comment]] = {}
    by_source = sorted((i for i, ln in enumerate(lines) if ln.lo is not None), key=lambda i: lines[i].lo)
    rest = []
    for c in comments:
        n = c.span.line
        if c.trailing:
            owner = next((i for i in by_source if lines[i].lo <= n <= lines[i].hi), None)
            if owner is not None:
                trailing.setdefault(owner, []).append(c)
                continue
        owner = next((i for i in by_source if lines[i].lo > n), None)
        if owner is None:
            rest.append(c)
        else:
            leading.setdefault(owner, []).append(c)

    if not layout:  # an AST built in memory: its comments (a note on where it came from) go first
        out += [c.text for c in spec.comments if not c.trailing]
    for i, line in enumerate(lines):
        if not layout:
            if line.group:
                emit("")
            emit(" " * line.indent + line.text)
            continue
        for c in leading.get(i, []):
            if blank_before(c.span.line):
                emit("")
            at = line.comment_indent if line.comment_indent is not None else line.indent
            emit(" " * at + c.text)
        if blank_before(line.lo) or (line.group and line.lo is None):
            emit("")
        text = " " * line.indent + line.text
        for c in trailing.get(i, []):
            text = text.ljust(c.span.column - 1) if len(text) + 2 <= c.span.column - 1 else text + "  "
            text += c.text
        emit(text)
    for c in rest:  # after the last line of code
        if blank_before(c.span.line):
            emit("")
        emit(c.text)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"


def fmt(spec: str) -> str:
    """A spec file (a path or a shipped name) in canonical form: `archdsl.fmt("convnext_t")`."""
    from .resolve import read_spec
    from .specpath import find_spec

    return format_spec(read_spec(find_spec(str(spec))))


# ---- helpers ------------------------------------------------------------------------------

def _lines_of(span, first: bool = False) -> tuple[int | None, int | None]:
    if span is None:
        return None, None
    return (span.line, span.line) if first else (span.line, span.end_line)


def _same_line(a: ast.Op, b: ast.Op) -> bool:
    return a.span.path == b.span.path and a.span.end_line == b.span.line


def _computes(o: ast.Op) -> bool:
    """An op that starts a unit (a conv, a pool, a linear); norms and activations follow it."""
    from .errors import ArchError
    from .to_ir import lookup_op

    try:
        definition, _ = lookup_op(o.name)
    except ArchError:  # an unknown word: let it start its own line
        return True
    return definition.family not in ("norm", "act", "drop", "scale")


# ---- equality modulo spans ----------------------------------------------------------------

def strip(node) -> object:
    """A node as plain data without its spans (and the file's path): what a round trip keeps."""
    if isinstance(node, ast.Node):
        data = {k: strip(v) for k, v in node if not k.endswith("span") and k not in ("path", "comments")}
        if isinstance(node, ast.SpecFile):  # comments follow their code when sections are reordered
            data["comments"] = sorted((c.text, c.trailing) for c in node.comments)
        return type(node).__name__, data
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items()}
    if isinstance(node, (tuple, list)):
        return tuple(strip(v) for v in node)
    return node


def same(a: ast.Node, b: ast.Node) -> bool:
    """Equal but for spans: `same(parse(format_spec(x)), x)` for every spec."""
    return strip(a) == strip(b)
