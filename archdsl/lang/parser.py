"""Text -> `SpecFile`. The grammar is `grammar.lark`; this module turns lark's tree into the
AST and lark's errors into `SpecSyntaxError`s that point at the offending token."""
from __future__ import annotations

import re

from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import ast
from .errors import SOURCES, ErrorCollector, Span, SpecSyntaxError
from .limits import MAX_SPEC_CHARS, too_big

MAX_NESTING = 32  # `{` inside `{`: deeper is surely a mistake, and would exhaust Python's stack
_SECTION_WORDS = ("input", "classes", "block", "stem", "downsample", "stages", "head", "taps", "init", "train",
                  "set", "let", "require")


@lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = (Path(__file__).parent / "grammar.lark").read_text()
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def _span(path: str, item) -> Span:
    meta = item.meta if hasattr(item, "meta") and not isinstance(item, Token) else item
    return Span(path, meta.line, meta.column, meta.end_line, meta.end_column)


class _ToAst(Transformer):
    """One method per grammar rule; each returns the AST node (or a tagged tuple for sections)."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def _word(self, tok: Token) -> ast.Word:
        return ast.Word(text=str(tok), span=_span(self.path, tok))

    @v_args(meta=True)
    def op(self, meta, items):
        name, *args = items
        return ast.Op(name=self._word(name), args=tuple(self._word(a) for a in args),
                      span=_span(self.path, meta))

    def op_list(self, items):
        return tuple(items)

    @v_args(meta=True)
    def body(self, meta, items):
        stmts = []
        for item in items:
            stmts.extend(item if isinstance(item, tuple) else (item,))
        return stmts, _span(self.path, meta)

    def shortcut(self, items):
        return items[0]

    @v_args(meta=True)
    def residual(self, meta, items):
        (body, _), *rest = items
        shortcut = rest[0] if rest else None
        none = None
        if shortcut and len(shortcut) == 1 and shortcut[0].name.text == "none" and not shortcut[0].args:
            shortcut, none = None, shortcut[0].name
        return ast.Residual(body=tuple(body), shortcut=shortcut, shortcut_none=none,
                            span=_span(self.path, meta))

    @v_args(meta=True)
    def gate(self, meta, items):
        (body, _), = items
        return ast.Gate(body=tuple(body), span=_span(self.path, meta))

    @v_args(meta=True)
    def concat(self, meta, items):
        (body, _), = items
        return ast.Join(kind="concat", body=tuple(body), span=_span(self.path, meta))

    @v_args(meta=True)
    def subtract(self, meta, items):
        (body, _), = items
        return ast.Join(kind="subtract", body=tuple(body), span=_span(self.path, meta))

    @v_args(meta=True)
    def guard(self, meta, items):
        name, cmp, value, (body, _) = items
        return ast.Guard(name=self._word(name), cmp=self._word(cmp), value=self._word(value),
                         body=tuple(body), span=_span(self.path, meta))

    def params(self, items):
        return tuple(self._word(t) for t in items)

    @v_args(meta=True)
    def block(self, meta, items):
        name, *params, (body, _) = items
        return ("block", ast.Block(name=self._word(name), params=params[0] if params else (),
                                   body=tuple(body), span=_span(self.path, meta)))

    def header(self, items):
        return ("header", [self._word(t) for t in items])

    @v_args(meta=True)
    def input(self, meta, items):
        return ("input", self._word(items[0]), _span(self.path, meta))

    @v_args(meta=True)
    def classes(self, meta, items):
        return ("classes", self._word(items[0]), _span(self.path, meta))

    @v_args(meta=True)
    def stem(self, meta, items):
        return ("stem", items[0], _span(self.path, meta))

    @v_args(meta=True)
    def downsample(self, meta, items):
        return ("downsample", items[0], _span(self.path, meta))

    @v_args(meta=True)
    def head(self, meta, items):
        return ("head", items[0], _span(self.path, meta))

    @v_args(meta=True)
    def taps(self, meta, items):
        return ("taps", tuple(self._word(t) for t in items), _span(self.path, meta))

    @v_args(meta=True)
    def stage(self, meta, items):
        width, block, depth, *args = (self._word(t) for t in items)
        return ast.Stage(width=width, block=block, depth=depth, args=tuple(args), span=_span(self.path, meta))

    @v_args(meta=True)
    def stages(self, meta, items):
        return ("stages", tuple(items), _span(self.path, meta))

    def group(self, items):
        return tuple(self._word(t) for t in items)

    @v_args(meta=True)
    def setting(self, meta, items):
        key, *groups = items
        return ast.Setting(key=self._word(key), groups=tuple(groups), span=_span(self.path, meta))

    @v_args(meta=True)
    def set(self, meta, items):
        key, *values = (self._word(t) for t in items)
        return ("set", ast.SetLine(key=key, values=tuple(values), span=_span(self.path, meta)))

    @v_args(meta=True)
    def init(self, meta, items):
        return ("init", items[0], _span(self.path, meta))

    @v_args(meta=True)
    def train(self, meta, items):
        return ("train", tuple(items), _span(self.path, meta))

    # ---- spaces ----
    @v_args(meta=True)
    def let_line(self, meta, items):
        name, expr = (self._stripped(t) for t in items)
        return ast.LetLine(name=name, expr=expr, span=Span(self.path, name.span.line, name.span.column,
                                                           expr.span.line, expr.span.end_column))

    @v_args(meta=True)
    def let(self, meta, items):
        return ("let", tuple(items), _span(self.path, meta))

    def require_line(self, items):
        return self._stripped(items[0])

    def _stripped(self, tok: Token) -> ast.Word:
        """An expression's text without the spaces before a comment, and its span to match."""
        text = str(tok).rstrip()
        s = _span(self.path, tok)
        return ast.Word(text=text, span=Span(s.path, s.line, s.column, s.line, s.column + len(text)))

    @v_args(meta=True)
    def require(self, meta, items):
        return ("require", tuple(items), _span(self.path, meta))

    def start(self, items):
        return items


def _syntax_error(e: UnexpectedInput, path: str, text: str) -> SpecSyntaxError:
    line, column = e.line, e.column
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        opened = _unclosed_brace(text)
        lines = text.rstrip("\n").split("\n")
        if opened:
            span = Span(path, opened[0], opened[1], opened[0], opened[1] + 1)
            return SpecSyntaxError("unexpected end of file: this `{` is never closed", span,
                                   hint="add the matching `}`", code="E102")
        last = len(lines)
        span = Span(path, last, len(lines[-1]) + 1, last, len(lines[-1]) + 2)
        return SpecSyntaxError("unexpected end of file", span, code="E102")
    if isinstance(e, UnexpectedCharacters):
        span = Span(path, line, column, line, column + 1)
        char = e.char if e.char.isprintable() else ascii(e.char)[1:-1]  # `\x00`, not an invisible byte
        hint = ("ops on one line are separated by `,`" if char == ";" else
                "names, numbers, `.`, `+`, `-`, `=`, `,`, `{`, `}`, `(`, `)` and (after `if NAME`) "
                "`<`, `>`, `!=` are allowed; `#` starts a comment")
        return SpecSyntaxError(f"unexpected character `{char}`", span, hint=hint, code="E101")
    assert isinstance(e, UnexpectedToken)
    tok = e.token
    span = Span(path, line, column, tok.end_line or line, tok.end_column or column + len(str(tok)))
    expected = sorted(e.expected)
    if tok.type == "_NL":
        span = Span(path, line, column, line, column + 1)
        hint = _expected_hint(expected)
        if _in_stages(text, line):
            hint = "a stage line is `WIDTH BLOCK xDEPTH [sSTRIDE]`, e.g. `96 convnext x3`"
        if _statement_word(text, line) == "taps":
            hint = _TAPS_HINT
        return SpecSyntaxError("unexpected end of line", span, hint=hint, code="E103")
    if line == 1 or not _has_header(text):
        if str(tok) != "network":
            return SpecSyntaxError(f"expected `network NAME` first, found `{tok}`", span,
                                   hint="a spec starts with `network NAME [extends PARENT]`", code="E104")
    hint = _expected_hint(expected)
    first = (text.split("\n")[line - 1].split() or [""])[0] if line <= len(text.split("\n")) else ""
    opened = _unclosed_brace("\n".join(text.split("\n")[:line - 1]))
    if first in _SECTION_WORDS and opened:
        hint = f"`{first}` starts a section, but the `{{` on line {opened[0]} is still open; is a `}}` missing?"
    elif _statement_word(text, line) == "taps":
        hint = _TAPS_HINT
    return SpecSyntaxError(f"unexpected `{tok}`", span, hint=hint, code="E103")


_TAPS_HINT = ("`taps` lists places, separated by commas: `taps stem, stages.1, stages.2.blocks.5` "
              "(places are written out, never open values)")


def _statement_word(text: str, line: int) -> str:
    """The first word of the statement `line` belongs to: a line that goes on after a comma
    belongs to the one above it."""
    lines = text.split("\n")
    n = min(line, len(lines)) - 1
    while n > 0 and lines[n - 1].split("#", 1)[0].rstrip().endswith(","):
        n -= 1
    return (lines[n].split("#", 1)[0].split() or [""])[0] if lines else ""


_TOKEN_NAMES = {"RBRACE": "`}`", "LBRACE": "`{`", "COMMA": "`,`", "LPAR": "`(`", "RPAR": "`)`",
                "CMP": "a comparison (`>`, `<`, `==`, `!=`, `>=`, `<=`)", "_NL": "a new line",
                "OPEN": "an open value", "EXPR": "an expression", "EQUAL": "`=`",
                "NAME": "a name", "WORD": "a value", "$END": "end of file"}


def _expected_hint(expected: list[str]) -> str:
    words = []
    for name in expected:
        if name in _TOKEN_NAMES:
            words.append(_TOKEN_NAMES[name])
        elif name.isupper() and not name.startswith("_"):
            words.append(f"`{name.lower()}`")
    return ("expected " + ", ".join(sorted(set(words)))) if words else ""


def _has_header(text: str) -> bool:
    for raw in text.split("\n"):
        stripped = raw.split("#", 1)[0].strip()
        if stripped:
            return stripped.startswith("network")
    return False


def _in_stages(text: str, line: int) -> bool:
    """Whether `line` lies inside an open `stages {`."""
    opened = _unclosed_brace("\n".join(text.split("\n")[:line - 1]))
    return opened is not None and text.split("\n")[opened[0] - 1].lstrip().startswith("stages")


def _unclosed_brace(text: str) -> tuple[int, int] | None:
    """Line and column of the last `{` that has no matching `}`."""
    stack: list[tuple[int, int]] = []
    for n, raw in enumerate(text.split("\n"), 1):
        for col, ch in enumerate(raw.split("#", 1)[0], 1):
            if ch == "{":
                stack.append((n, col))
            elif ch == "}" and stack:
                stack.pop()
    return stack[-1] if stack else None


def _too_deep(text: str) -> tuple[int, int] | None:
    """Line and column of the first `{` nested deeper than MAX_NESTING."""
    depth = 0
    for n, raw in enumerate(text.split("\n"), 1):
        for col, ch in enumerate(raw.split("#", 1)[0], 1):
            depth += (ch == "{") - (ch == "}" and depth > 0)
            if depth > MAX_NESTING:
                return n, col
    return None


MAX_DIGITS = 30  # more than any limit needs (a kernel of 1,024; 2^63 for a seed has 19)
_LONG_NUMBER = re.compile(r"\d{%d,}" % (MAX_DIGITS + 1))


def _long_number(text: str) -> tuple[int, int, int] | None:
    """(line, column, digits) of the first number too long to be any value, outside comments;
    caught before int() meets it (Python refuses to convert more than 4,300 digits)."""
    for n, raw in enumerate(text.split("\n"), 1):
        m = _LONG_NUMBER.search(raw.split("#", 1)[0])
        if m:
            return n, m.start() + 1, len(m.group())
    return None


def parse(text: str, path: str = "<string>") -> ast.SpecFile:
    """Parse one file. Raises `SpecSyntaxError` or `ArchErrors` (duplicate sections)."""
    if len(text) > MAX_SPEC_CHARS:  # before anything else: parsing is linear but not free
        raise too_big(f"the length of the spec `{path}` in characters", len(text), MAX_SPEC_CHARS, None,
                      "a spec describes a network in a few hundred lines; repeat blocks with `xN`")
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")  # no BOM; lines end in `\n`
    SOURCES[path] = text
    if not any(line.split("#", 1)[0].strip() for line in text.split("\n")):
        raise SpecSyntaxError("empty spec: nothing but blank lines and comments", Span(path, 1, 1, 1, 2),
                              hint="a spec starts with `network NAME [extends PARENT]`", code="E104")
    long = _long_number(text)
    if long:
        line, col, digits = long
        raise SpecSyntaxError(f"a number of {digits:,} digits", Span(path, line, col, line, col + digits),
                              hint=f"no value archdsl takes has more than {MAX_DIGITS} digits (the limits "
                                   "are listed in docs/guarantees.md)", code="E310")
    deep = _too_deep(text)
    if deep:
        raise SpecSyntaxError(f"braces nested more than {MAX_NESTING} deep", Span(path, *deep, deep[0], deep[1] + 1),
                              hint="a `residual { }` rarely needs more than two levels; is a `}` missing?",
                              code="E106")
    try:
        tree = _lark().parse(text if text.endswith("\n") else text + "\n")
    except UnexpectedInput as e:
        raise _syntax_error(e, path, text) from None
    items = _ToAst(path).transform(tree)
    fields: dict = {"path": path, "blocks": {}}
    errors = ErrorCollector()
    seen: dict[str, Span] = {}
    for item in items:
        kind = item[0]
        if kind == "header":
            words = item[1]
            fields["name"] = words[0]
            fields["extends"] = words[1] if len(words) > 1 else None
            continue
        if kind == "block":
            block = item[1]
            key, span = f"block {block.name.text}", block.name.span
        elif kind == "set":
            key, span = f"set {item[1].key.text}", item[1].span
        else:
            key, span = kind, item[2]  # the whole statement, keyword included
        if key in seen:
            first = seen[key]
            errors.add(SpecSyntaxError(f"`{key}` is stated twice in this file", span,
                                       hint=f"first stated at line {first.line}; keep one", code="E105"))
            continue
        seen[key] = span
        if kind == "block":
            fields["blocks"][item[1].name.text] = item[1]
        elif kind in ("input", "classes"):
            fields[kind] = item[1]
        elif kind in ("stem", "downsample", "head", "init"):
            fields[kind] = item[1]
        elif kind == "stages":
            fields["stages"], fields["stages_span"] = item[1], item[2]
        elif kind == "train":
            fields["train"], fields["train_span"] = item[1], item[2]
        elif kind == "taps":
            fields["taps"], fields["taps_span"] = item[1], item[2]
        elif kind == "set":
            fields["sets"] = fields.get("sets", ()) + (item[1],)
        elif kind == "let":
            fields["lets"], fields["lets_span"] = item[1], item[2]
        elif kind == "require":
            fields["requires"], fields["requires_span"] = item[1], item[2]
    errors.raise_if_any()
    fields["comments"] = _comments(text, path)
    return ast.SpecFile(**fields)


def _comments(text: str, path: str) -> tuple[ast.Comment, ...]:
    """Every `# ...` in the file. The language has no strings, so a `#` always starts one."""
    out = []
    for n, raw in enumerate(text.split("\n"), 1):
        col = raw.find("#")
        if col >= 0:
            body = raw[col:].rstrip()
            out.append(ast.Comment(text=body, trailing=bool(raw[:col].strip()),
                                   span=Span(path, n, col + 1, n, col + 1 + len(body))))
    return tuple(out)
