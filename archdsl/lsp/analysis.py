"""A document's text -> what an editor shows, as plain data. Positions are 0-based (line,
character) as LSP counts them; `Span`s (1-based, end exclusive) are converted here.

    a = analyze(text, "/path/to/my.arch")     # parse, resolve, check, count: as `archdsl check`
    a.errors                                  # ArchErrors, codes and hints as the CLI prints them
    hover(a, line, char)                      # markdown: the op, its rules, what it resolved to here
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from compiler import IRGraph
from compiler import ops as registry

from ..lang import ast
from ..lang.errors import ArchError, Span
from ..lang.network import Network
from ..report import Report, count

Position = tuple[int, int]          # (line, character), 0-based
Range = tuple[Position, Position]


@dataclass
class Analysis:
    path: str
    text: str
    spec: ast.SpecFile | None = None    # None: the text does not parse
    net: Network | None = None          # None: it does not resolve
    ir: IRGraph | None = None           # None: it does not check
    report: Report | None = None
    errors: list[ArchError] = field(default_factory=list)
    seconds: float = 0.0                # how long the analysis took


def analyze(text: str, path: str) -> Analysis:
    """What `archdsl check` does to a file, on the editor's text: parse, resolve (`extends`
    is looked up beside `path`), check shapes, then count params and MACs."""
    from ..api import check
    from ..lang.parser import parse
    from ..lang.resolve import resolve
    from ..report import report_from_ir

    started = time.perf_counter()
    a = Analysis(path, text)
    try:
        a.spec = parse(text, path)
        a.net = resolve(a.spec)
        _, a.ir = check(a.net)
        a.report = report_from_ir(a.net, a.ir)
    except ArchError as e:
        a.errors = list(e.errors)
    a.seconds = time.perf_counter() - started
    return a


# ---------------------------------------------------------------- positions
def _lines(a: Analysis) -> list[str]:
    return a.text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _utf16(line: str, column: int) -> int:
    """A 1-based character column (as lark counts) as LSP's 0-based UTF-16 offset."""
    return len(line[:max(column - 1, 0)].encode("utf-16-le")) // 2


def _from_utf16(line: str, character: int) -> int:
    """LSP's UTF-16 offset on `line` as a 0-based character index."""
    units = 0
    for i, c in enumerate(line):
        if units >= character:
            return i
        units += 2 if ord(c) > 0xFFFF else 1
    return len(line)


def span_range(a: Analysis, span: Span) -> Range:
    lines = _lines(a)

    def pos(line: int, column: int) -> Position:
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        return (max(line - 1, 0), _utf16(text, column))

    return pos(span.line, span.column), pos(span.end_line, span.end_column)


def same_file(a: str, b: str) -> bool:
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):
        return a == b


def _inside(span: Span, line: int, column: int) -> bool:
    """Whether 1-based (line, column) lies in `span` (its end included, so the cursor just after
    a word still hovers it)."""
    return (span.line, span.column) <= (line, column) <= (span.end_line, span.end_column)


def _cursor(a: Analysis, position: Position) -> tuple[int, int]:
    """0-based LSP position -> 1-based (line, column) in characters."""
    lines = _lines(a)
    line = lines[position[0]] if position[0] < len(lines) else ""
    return position[0] + 1, _from_utf16(line, position[1]) + 1


# ---------------------------------------------------------------- diagnostics
@dataclass(frozen=True)
class Diagnostic:
    range: Range
    code: str
    message: str     # the message, then `help: hint` as the CLI prints it


def diagnostics(a: Analysis) -> list[Diagnostic]:
    """Every error, at its span in this file. An error in another file (a parent this spec
    extends) is shown at the `extends` word, saying where it is."""
    out = []
    for e in a.errors:
        message = e.message + (f"\nhelp: {e.hint}" if e.hint else "")
        if e.span is not None and same_file(e.span.path, a.path):
            rng = span_range(a, e.span)
        else:
            anchor = a.spec.extends.span if a.spec is not None and a.spec.extends is not None else None
            rng = span_range(a, anchor) if anchor else ((0, 0), (0, len(_lines(a)[0])))
            if e.span is not None:
                message = f"in {e.span}: {message}"
        out.append(Diagnostic(rng, e.code, message))
    return out


# ---------------------------------------------------------------- the AST under the cursor
def _ops(stmts) -> list[ast.Op]:
    found: list[ast.Op] = []
    for s in stmts or ():
        if isinstance(s, ast.Op):
            found.append(s)
        elif isinstance(s, ast.Residual):
            found += _ops(s.body) + list(s.shortcut or ())
        elif isinstance(s, (ast.Gate, ast.Guard, ast.Join)):
            found += _ops(s.body)
    return found


def all_ops(spec: ast.SpecFile) -> list[ast.Op]:
    found = [op for part in (spec.stem, spec.downsample, spec.head) for op in part or ()]
    for block in spec.blocks.values():
        found += _ops(block.body)
    return found


def op_at(a: Analysis, position: Position) -> ast.Op | None:
    """The op whose word (or one of its argument words) is under the cursor."""
    if a.spec is None:
        return None
    line, column = _cursor(a, position)
    for op in all_ops(a.spec):
        if any(_inside(w.span, line, column) for w in (op.name, *op.args)):
            return op
    return None


def word_at(a: Analysis, position: Position) -> tuple[str, Range] | None:
    lines = _lines(a)
    if position[0] >= len(lines):
        return None
    line = lines[position[0]]
    i = _from_utf16(line, position[1])
    for m in re.finditer(r"[A-Za-z_][A-Za-z0-9_.]*", line):
        if m.start() <= i <= m.end():
            return m.group(), ((position[0], _utf16(line, m.start() + 1)), (position[0], _utf16(line, m.end() + 1)))
    return None


# ---------------------------------------------------------------- hover
def _shape(shape) -> str:
    return "x".join(map(str, shape))


def _macs(n: int) -> str:
    return f"{n / 1e9:.3f} G" if n >= 1e8 else f"{n / 1e6:.2f} M"


def _params(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 100_000 else count(n)


def op_def(word: str) -> registry.OpDef | None:
    if word in registry.REGISTRY:
        return registry.REGISTRY[word]
    m = re.fullmatch(r"([a-z_]+?)(\d+)", word)
    return registry.REGISTRY.get(m.group(1)) if m else None


def uses(a: Analysis, op: ast.Op) -> list[dict]:
    """Where the op ran in the checked network: one row per group (stem, stage N, head) with
    the number of uses, the first use's input and output shape, and params and MACs per use."""
    if a.ir is None:
        return []
    rows: dict[str, dict] = {}
    for _, d in a.ir.op_nodes():
        if d["span"] != op.span:
            continue
        m = d["meta"]
        row = rows.setdefault(d["group"], {"group": d["group"], "n": 0, "in": m["in_shape"], "out": m["shape"],
                                           "params": 0, "macs": 0, "paths": [], "detail": ""})
        row["n"] += 1
        row["params"] += m["params"]
        row["macs"] += m["macs"]
        row["paths"].append(d["path"])
        row["detail"] = row["detail"] or registry.get(d["op"]).detail(d["attrs"], m["in_shape"])
    return list(rows.values())


def hover(a: Analysis, position: Position) -> tuple[str, Range] | None:
    """Markdown for the op under the cursor: the registry's summary and rules, and what it
    resolved to here, per stage where its block is reused."""
    from ..lang.docgen import ARG_SYNTAX

    op = op_at(a, position)
    if op is None:
        return None
    d = op_def(op.name.text)
    if d is None:
        return None
    args = ", ".join(ARG_SYNTAX[k] for k in d.accepts) or "none"
    lines = [f"**{op.name.text}** (`{d.name}`): {d.summary}", "",
             f"arguments: {args}  ", f"shape: {d.shape_rule} · params: {d.params_rule} · MACs: {d.macs_rule}"]
    rows = uses(a, op)
    if rows:
        total = sum(r["n"] for r in rows)
        lines += ["", f"Here: {total} use{'s' if total != 1 else ''}"
                  + (f" ({rows[0]['detail']})" if rows[0]["detail"] else ""), "",
                  "| where | uses | input | output | params | MACs |", "|---|---:|---|---|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['group']} | {r['n']} | {_shape(r['in'])} | {_shape(r['out'])} | "
                         f"{count(r['params'])} | {_macs(r['macs'])} |")
        if len(rows) > 1:
            lines.append(f"| total | {total} | | | {count(sum(r['params'] for r in rows))} | "
                         f"{_macs(sum(r['macs'] for r in rows))} |")
    elif a.errors:
        lines += ["", "_(shapes and costs appear once the spec checks)_"]
    return "\n".join(lines), span_range(a, op.name.span)


# ---------------------------------------------------------------- inlay hints
def inlay_hints(a: Analysis) -> list[tuple[Position, str]]:
    """At the end of each stage line of this file (and of `stem` and `head`): the output shape,
    params and MACs of that part of the network."""
    if a.report is None or a.net is None:
        return []
    stages = {s.name: s for s in a.report.stages}
    hints = []
    places: list[tuple[str, Span | None]] = [(f"stage {i + 1}", s.span) for i, s in enumerate(a.net.stages)]
    if a.spec is not None:
        for part in ("stem", "head"):
            ops = getattr(a.spec, part)
            if ops:
                places.append((part, ops[-1].span))
    for name, span in places:
        row = stages.get(name)
        if row is None or span is None or not same_file(span.path, a.path):
            continue
        end = span_range(a, span)[1]
        hints.append((end, f"  → {_shape(row.shape)} · {_params(row.params)} params · {_macs(row.macs)}MACs"))
    return hints


# ---------------------------------------------------------------- completion
SECTIONS = ("network", "input", "classes", "block", "stem", "downsample", "stages", "head", "taps", "init", "train",
            "set")
ARG_WORDS = {"width": ["4x", "1x", "0.25x in", "in"], "stride": ["s2", "stride"], "groups": ["g32", "gw16"],
             "bias": ["bias", "nobias"], "value": [], "eps": ["eps=1e-6"], "heads": ["h6"], "headdim": ["d32"],
             "shift": ["shift"], "momentum": ["momentum=0.1"], "padding": ["p1"]}


@dataclass(frozen=True)
class Item:
    label: str
    kind: str          # op, argument, block, spec, field, keyword
    detail: str = ""
    insert: str | None = None


def _enclosing(text: str) -> list[str]:
    """The `{ }` sections open at the end of `text`, outermost first, each named by its first
    word (`block`, `residual`, `gate`, `if`, `stages`, `train`)."""
    stack: list[str] = []
    for line in text.split("\n"):
        code = line.split("#", 1)[0]
        for i, c in enumerate(code):
            if c == "{":
                words = code[:i].replace("}", " ").split()
                stack.append(words[0] if words else "")
            elif c == "}" and stack:
                stack.pop()
    return stack


def _statement(before: str) -> list[str]:
    """The words of the op statement the cursor is in: after the last `,` or `{` on the line,
    with a leading section word (`stem`, `downsample`, `head`) dropped."""
    part = re.split(r"[,{]", before.split("#", 1)[0])[-1]
    words = part.split()
    if words and words[0] in ("stem", "downsample", "head") and part.lstrip().startswith(words[0]):
        words = words[1:]
    return words


def completions(a: Analysis, position: Position) -> list[Item]:
    from ..lang.recipe import EXAMPLES, FIELDS
    from ..lang.specpath import shipped_names

    lines = _lines(a)
    line = lines[position[0]] if position[0] < len(lines) else ""
    before = line[:_from_utf16(line, position[1])]
    if re.match(r"\s*network\s+\w+\s+extends\s+\w*$", before):
        items = [Item(name, "spec", f"shipped spec ({Path(p).parent.name}/{Path(p).name})")
                 for name, p in sorted(shipped_names().items())]
        here = Path(a.path).parent
        if here.is_dir():
            items += [Item(f.stem, "spec", f"beside this file ({f.name})") for f in sorted(here.glob("*.arch"))
                      if not same_file(str(f), a.path)]
        return items
    text_before = "\n".join(lines[:position[0]] + [before])
    if re.match(r"\s*taps\s", before):
        written = {w.strip() for w in before.split(None, 1)[1].split(",")}
        return [item for item in tap_items(a, position[0]) if item.label not in written]
    open_ = _enclosing(text_before)
    typing_first = re.fullmatch(r"\s*\w*", before) is not None
    if open_ and open_[0] == "train":
        if typing_first:
            return [Item(f, "field", f"e.g. `{f} {EXAMPLES[f].replace(',', ' ')}`" if f in EXAMPLES else "")
                    for f in (*FIELDS, "augment")]
        return []
    if open_ and open_[0] == "stages":
        words = before.split()
        if (len(words) == 1 and before.endswith(" ")) or (len(words) == 2 and not before.endswith(" ")):
            return block_items(a)
        return []
    if not open_ and typing_first:
        return [Item(s, "keyword", "section") for s in SECTIONS]
    in_ops = bool(open_) or re.match(r"\s*(stem|downsample|head)\b", before) is not None
    if not in_ops:
        return []
    words = _statement(before)
    if words and (len(words) > 1 or before.endswith(" ")):
        d = op_def(words[0])
        if d is not None:
            from ..lang.docgen import ARG_SYNTAX

            return [Item(w, "argument", f"{d.name}: {ARG_SYNTAX[k]}") for k in d.accepts for w in ARG_WORDS.get(k, ())]
        return []
    items = [Item(f"{name}K" if d.kernel else name, "op", d.summary, insert=f"{name}${{1:3}}" if d.kernel else name)
             for name, d in sorted(registry.REGISTRY.items())]
    if open_ and open_[0] == "block":
        items += [Item("residual", "keyword", "residual { ... }: adds its input back", "residual {\n\t$0\n}"),
                  Item("gate", "keyword", "gate { ... }: multiplies its input", "gate {\n\t$0\n}"),
                  Item("concat", "keyword", "concat { ... }: the input and the body's output side by side",
                       "concat {\n\t$0\n}"),
                  Item("subtract", "keyword", "subtract { ... }: the body's output less the input",
                       "subtract {\n\t$0\n}")]
    return items


def tap_items(a: Analysis, line: int) -> list[Item]:
    """The places the `taps` statement on `line` can name: every section's end (`stem`,
    `stages.I`, `stages.I.blocks.J`, `downsample.I`, `head`), with the shape there. Read off the
    network even where the statement being typed does not parse or check yet."""
    from compiler import CompileErrors, check
    from compiler.passes.taps import section_ends

    from ..lang.to_ir import network_to_ir

    if a.net is None:  # `taps stem, ` does not parse: the spec without the statement
        lines = _lines(a)
        first, last = line, line
        while first > 0 and lines[first - 1].split("#", 1)[0].rstrip().endswith(","):
            first -= 1
        while last + 1 < len(lines) and lines[last].split("#", 1)[0].rstrip().endswith(","):
            last += 1
        a = analyze("\n".join(lines[:first] + [""] * (last + 1 - first) + lines[last + 1:]), a.path)
        if a.net is None:
            return []
    ir = a.ir
    if ir is None:
        try:
            ir = network_to_ir(a.net)
            check(ir)
        except (ArchError, CompileErrors):
            return []
    return [Item(name, "tap", _shape(ir.g.nodes[nid]["meta"]["shape"])) for name, nid in section_ends(ir).items()]


def block_items(a: Analysis) -> list[Item]:
    blocks: dict[str, str] = {}
    if a.net is not None:
        blocks = {name: "block" for name in a.net.blocks}
    elif a.spec is not None:
        blocks = {name: "block" for name in a.spec.blocks}
    return [Item(name, "block", detail) for name, detail in sorted(blocks.items())]


# ---------------------------------------------------------------- go to definition
def definition(a: Analysis, position: Position) -> tuple[str, Range] | None:
    """`extends NAME` -> that file; a block name -> its `block` line (here or in a parent)."""
    from ..lang.resolve import load_chain
    from ..lang.specpath import find_spec

    found = word_at(a, position)
    if found is None or a.spec is None:
        return None
    word = found[0]
    ext = a.spec.extends
    if ext is not None and word == ext.text and position[0] == span_range(a, ext.span)[0][0]:
        try:
            return str(find_spec(word, Path(a.path).parent)), ((0, 0), (0, 0))
        except ArchError:
            return None
    try:
        chain = load_chain(a.spec)
    except ArchError:
        chain = [a.spec]
    for spec in chain:
        block = spec.blocks.get(word)
        if block is not None:
            target = Analysis(spec.path, a.text if spec is a.spec else _read(spec.path))
            return spec.path, span_range(target, block.name.span)
    return None


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


# ---------------------------------------------------------------- formatting, code lens
def formatted(a: Analysis) -> str | None:
    """The document as the printer writes it (`archdsl fmt`); None when it does not parse."""
    from ..lang.parser import parse
    from ..lang.printer import format_spec

    if a.spec is None:
        return None
    return format_spec(parse(a.text, a.path))  # parsed again: the printer reads the text it was parsed from


def parent_lens(a: Analysis) -> tuple[Range, str] | None:
    """Where to offer "diff against parent", and the parent's name."""
    if a.spec is None or a.spec.extends is None:
        return None
    return span_range(a, a.spec.extends.span), a.spec.extends.text


def diff_against_parent(a: Analysis) -> str:
    """The semantic diff from the spec this one extends to this one, as `archdsl diff` prints it."""
    from ..diff import diff
    from ..diff.render import plain
    from ..lang.specpath import find_spec

    if a.spec is None or a.spec.extends is None:
        return "this spec extends nothing"
    if a.net is None:
        return "fix the errors first: " + "; ".join(e.message for e in a.errors)
    parent = find_spec(a.spec.extends.text, Path(a.path).parent)
    return plain(diff(str(parent), a.net).model)
