"""The expression language of spaces: one small language shared by derived values (`let`),
constraints (`require`) and the holes of open words (`dwconv{k}`, `{ws[0]}`).

    e = parse_expr("quant(w0 * wm ** s, 8)", span)
    e.names                       # {"w0", "wm", "s"}
    e.evaluate({"w0": 24, ...})   # a number, a word, a list or a truth value

Its syntax is a small subset of Python's expressions (read with Python's own `ast` parser, then
checked node by node against the list below): numbers, names, `[a, b]`, `+ - * / // % **`,
comparisons (`<= < == != > >=`, chained), `and or not`, `a if c else b`, `x[i]` and calls to the
functions in FUNCTIONS. Arithmetic, comparisons and `a if c else b` on a list act on each item
(numpy's way: `w0 + wa * range(d)`); a constraint that gives a list holds when every item does.

A distribution (an open value) is one call at the top of a `let` line or of a whole value:
`choice(3, 5, 7)`, `choice(gelu, relu)`, `int(LO, HI[, log|pow2][, q=Q])`,
`float(LO, HI[, log][, q=Q])`. Its arguments are literals; a choice's may be words.
"""
from __future__ import annotations

import ast as pyast
import math
from dataclasses import dataclass, field
from typing import Callable

from .errors import ArchError, Span


class SpaceError(ArchError):
    """A mistake in a space: its expressions, its distributions, its open values."""

    code = "E170"


# ---- values -----------------------------------------------------------------------------

def _elementwise(fn: Callable, *args):
    lists = [a for a in args if isinstance(a, list)]
    if not lists:
        return fn(*args)
    n = len(lists[0])
    if any(len(a) != n for a in lists):
        raise ValueError(f"lists of different lengths ({', '.join(str(len(a)) for a in lists)})")
    return [_elementwise(fn, *(a[i] if isinstance(a, list) else a for a in args)) for i in range(n)]


def _num(x):
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"`{show(x)}` is not a number")
    return x


def _int_if_whole(x: float) -> int | float:
    return int(x) if isinstance(x, float) and x.is_integer() and abs(x) < 2**53 else x


def _round(x):
    return _elementwise(lambda v: int(round(_num(v))), x)  # half to even, as numpy and pycls round


def _quant(x, q):
    """`x` to the nearest multiple of `q` (pycls's `round(x / q) * q`)."""
    return _elementwise(lambda v, m: int(round(_num(v) / _num(m))) * m, x, q)


def _range(n):
    n = _num(n)
    if int(n) != n or n < 0:
        raise ValueError(f"range takes a whole number of at least 0, got {show(n)}")
    if n > 100_000:
        raise ValueError(f"range({show(n)}) is longer than 100,000 items")
    return list(range(int(n)))


def _extreme(pick):
    """min/max: of a list (`min(ws)`), of several numbers, or item by item where one of two
    arguments is a list (numpy's minimum: `min(gw, ws)`)."""
    def fn(*args):
        if len(args) == 2 and any(isinstance(a, list) for a in args):
            return _elementwise(lambda a, b: pick(_num(a), _num(b)), *args)
        items = _seq(args)
        if not items:
            raise ValueError("of an empty list")
        return pick(items)
    return fn


def _seq(args) -> list:
    return list(args[0]) if len(args) == 1 and isinstance(args[0], list) else list(args)


def _unique(xs):
    return sorted(set(_list(xs)))


def _counts(xs):
    xs = _list(xs)
    return [xs.count(v) for v in sorted(set(xs))]


def _list(xs) -> list:
    if not isinstance(xs, list):
        raise TypeError(f"`{show(xs)}` is not a list")
    return xs


def _log(x, base=None):
    f = (lambda v: math.log(_num(v))) if base is None else (lambda v: math.log(_num(v), _num(base)))
    return _elementwise(f, x)


FUNCTIONS: dict[str, tuple[Callable, str]] = {
    "range": (_range, "range(n): the list 0, 1, ..., n-1"),
    "round": (_round, "round(x): the nearest whole number (half to even, as numpy)"),
    "floor": (lambda x: _elementwise(lambda v: math.floor(_num(v)), x), "floor(x)"),
    "ceil": (lambda x: _elementwise(lambda v: math.ceil(_num(v)), x), "ceil(x)"),
    "quant": (_quant, "quant(x, q): x rounded to the nearest multiple of q"),
    "log": (_log, "log(x[, base]): the natural logarithm, or to `base`"),
    "exp": (lambda x: _elementwise(lambda v: math.exp(_num(v)), x), "exp(x)"),
    "sqrt": (lambda x: _elementwise(lambda v: math.sqrt(_num(v)), x), "sqrt(x)"),
    "abs": (lambda x: _elementwise(lambda v: abs(_num(v)), x), "abs(x)"),
    "min": (_extreme(min), "min(list), min(a, b, ...), or item by item: min(gw, ws)"),
    "max": (_extreme(max), "max(list), max(a, b, ...), or item by item: max(gw, ws)"),
    "sum": (lambda xs: sum(_list(xs)), "sum(list)"),
    "len": (lambda xs: len(_list(xs)), "len(list)"),
    "unique": (_unique, "unique(list): its distinct items, in increasing order"),
    "counts": (_counts, "counts(list): how often each item of unique(list) occurs"),
    "all": (lambda xs: all(_list(xs)), "all(list)"),
    "any": (lambda xs: any(_list(xs)), "any(list)"),
}
DISTRIBUTIONS = ("choice", "int", "float")

_BINOPS = {pyast.Add: lambda a, b: a + b, pyast.Sub: lambda a, b: a - b, pyast.Mult: lambda a, b: a * b,
           pyast.Div: lambda a, b: a / b, pyast.FloorDiv: lambda a, b: a // b, pyast.Mod: lambda a, b: a % b,
           pyast.Pow: lambda a, b: a ** b}
_BINOP_TEXT = {pyast.Add: "+", pyast.Sub: "-", pyast.Mult: "*", pyast.Div: "/", pyast.FloorDiv: "//",
               pyast.Mod: "%", pyast.Pow: "**"}
_CMPS = {pyast.Lt: lambda a, b: a < b, pyast.LtE: lambda a, b: a <= b, pyast.Gt: lambda a, b: a > b,
         pyast.GtE: lambda a, b: a >= b, pyast.Eq: lambda a, b: a == b, pyast.NotEq: lambda a, b: a != b}


def show(value) -> str:
    """A value as the language writes it: `24`, `0.25`, `gelu`, `[32, 64]`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        value = _int_if_whole(value)
        return str(value) if isinstance(value, int) else repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)


# ---- distributions ----------------------------------------------------------------------

@dataclass(frozen=True)
class Distribution:
    """An open value: `choice(...)` among `options`, or a range `int`/`float` from `low` to
    `high` (both included) spaced `uniform`, `log` (log-uniform) or `pow2` (powers of two),
    rounded to a multiple of `q` where given."""

    kind: str                    # "choice", "int" or "float"
    options: tuple = ()          # a choice's numbers or words
    low: float = 0
    high: float = 0
    scale: str = "uniform"       # "uniform", "log" or "pow2"
    q: float | None = None
    text: str = ""

    def size(self) -> int | None:
        """How many values it can take; None for a float range without a quantum (unbounded)."""
        if self.kind == "choice":
            return len(set(self.options))
        if self.scale == "pow2":
            return len(pow2_values(self.low, self.high))
        step = self.q if self.q is not None else (1 if self.kind == "int" else None)
        if step is None:
            return None
        return int(math.floor((self.high - self.low) / step + 1e-9)) + 1 if self.low % step == 0 else \
            len(range(math.ceil(self.low / step), math.floor(self.high / step) + 1))


def pow2_values(low: float, high: float) -> list[int]:
    out, v = [], 1
    while v <= high:
        if v >= low:
            out.append(v)
        v *= 2
    return out


# ---- parsing ----------------------------------------------------------------------------

MAX_EXPR_CHARS = 1000  # one line of a spec; also bounds the depth of the closures `_compile` nests

@dataclass
class Expr:
    """A parsed expression with the span of its text, for errors."""

    text: str
    span: Span
    tree: pyast.AST
    names: set[str] = field(default_factory=set)

    def sub_span(self, node: pyast.AST) -> Span:
        s = self.span
        if not hasattr(node, "col_offset") or node.lineno != 1:
            return s
        return Span(s.path, s.line, s.column + node.col_offset, s.line, s.column + (node.end_col_offset or 0))

    def error(self, message: str, node: pyast.AST | None = None, hint: str | None = None,
              code: str = "E171") -> SpaceError:
        return SpaceError(message, self.sub_span(node) if node is not None else self.span, hint=hint, code=code)

    def evaluate(self, env: dict):
        """The expression's value. Runs a closure compiled once; on any failure the tree is
        walked again to point the error at the sub-expression at fault."""
        fn = self.__dict__.get("_fn")
        if fn is None:
            fn = self.__dict__["_fn"] = _compile(self.tree)
        try:
            return fn(env)
        except Exception:
            return _Eval(self, env).run(self.tree)


def parse_expr(text: str, span: Span, what: str = "an expression") -> Expr:
    """Read `text` (an expression of the language) or raise a SpaceError pointing into it."""
    stripped = text.strip()
    if len(stripped) > MAX_EXPR_CHARS:
        raise SpaceError(f"{what} is {len(stripped):,} characters long; the most is {MAX_EXPR_CHARS:,}", span,
                         hint="derive it in steps, one `let` line each", code="E171")
    try:
        tree = pyast.parse(stripped, mode="eval").body
    except (ValueError, RecursionError, MemoryError):  # a NUL byte, nesting past the parser's limit
        raise SpaceError(f"cannot read {what}", span, hint="expressions are printable text, nested a few levels",
                         code="E171") from None
    except SyntaxError as e:
        col = max(1, (e.offset or 1))
        at = Span(span.path, span.line, span.column + col - 1, span.line, span.column + col)
        raise SpaceError(f"cannot read {what} `{stripped}`: {e.msg}", at,
                         hint="expressions use numbers, names, + - * / // % **, comparisons, "
                         "and/or/not, [lists], x[i] and functions such as round(x)", code="E171") from None
    expr = Expr(stripped, Span(span.path, span.line, span.column, span.line, span.column + len(stripped)), tree)
    _check(expr, tree)
    return expr


_ALLOWED = (pyast.Constant, pyast.Name, pyast.List, pyast.UnaryOp, pyast.BinOp, pyast.Compare, pyast.BoolOp,
            pyast.IfExp, pyast.Subscript, pyast.Call, pyast.Load, pyast.USub, pyast.UAdd, pyast.Not,
            pyast.And, pyast.Or, pyast.keyword, *_BINOPS, *_CMPS)


MAX_DEPTH = 64  # nesting of an expression's tree: far past what a spec needs, far below Python's stack


def _check(expr: Expr, tree: pyast.AST) -> None:
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise expr.error(f"the expression is nested more than {MAX_DEPTH} deep", node,
                             hint="derive it in steps, one `let` line each")
        stack.extend((child, depth + 1) for child in pyast.iter_child_nodes(node))
    for node in pyast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise expr.error(f"`{pyast.get_source_segment(expr.text, node) or type(node).__name__}` is not part of "
                             "the expression language", node,
                             hint="expressions use numbers, names, + - * / // % **, comparisons, and/or/not, "
                             "[lists], x[i] and functions such as round(x)")
        if isinstance(node, pyast.Constant) and (isinstance(node.value, bool) or
                                                 not isinstance(node.value, (int, float))):
            raise expr.error(f"`{pyast.get_source_segment(expr.text, node)}`: only numbers are literals here", node,
                             hint="words (op names) are written bare, inside choice(...)")
        if isinstance(node, pyast.Call):
            if not isinstance(node.func, pyast.Name):
                raise expr.error("only a function's name may be called", node)
            name = node.func.id
            if name in DISTRIBUTIONS:
                if node is not tree:
                    raise expr.error(f"`{name}(...)` opens a value; it stands alone, not inside an expression",
                                     node, hint=f"name it on a `let` line (`v = {name}(...)`) and use `v` here")
                continue  # its arguments are literals, read by `distribution`
            if name not in FUNCTIONS:
                from .suggest import did_you_mean
                raise expr.error(f"unknown function `{name}`", node.func,
                                 hint=did_you_mean(name, list(FUNCTIONS))
                                 or "functions: " + ", ".join(FUNCTIONS), code="E172")
            if node.keywords:
                raise expr.error(f"`{name}` takes no named arguments", node.keywords[0].value)
        elif isinstance(node, pyast.Name) and not _is_func(tree, node):
            expr.names.add(node.id)
    _drop_choice_words(expr, tree)


def _is_func(tree, name_node) -> bool:
    return any(isinstance(n, pyast.Call) and n.func is name_node for n in pyast.walk(tree))


def _drop_choice_words(expr: Expr, tree) -> None:
    """A distribution's arguments are literals, not references."""
    if isinstance(tree, pyast.Call) and isinstance(tree.func, pyast.Name) and tree.func.id in DISTRIBUTIONS:
        expr.names.clear()


def distribution_of(expr: Expr) -> Distribution | None:
    """The distribution an expression is (`choice(3, 5)`, `int(8, 64, log, q=8)`), or None
    when it is an ordinary expression."""
    tree = expr.tree
    if not (isinstance(tree, pyast.Call) and isinstance(tree.func, pyast.Name) and tree.func.id in DISTRIBUTIONS):
        return None
    kind = tree.func.id
    if kind == "choice":
        if tree.keywords or not tree.args:
            raise expr.error("`choice` takes one or more numbers or words: `choice(3, 5, 7)`", tree, code="E175")
        options = tuple(_literal(expr, a, words=True) for a in tree.args)
        if len({type(o) is str for o in options}) > 1:
            raise expr.error("a choice is among numbers or among words, not both", tree, code="E175")
        return Distribution("choice", options=options, text=expr.text)
    usage = f"`{kind}(LOW, HIGH[, log{'|pow2' if kind == 'int' else ''}][, q=Q])`"
    numbers = [a for a in tree.args if not isinstance(a, pyast.Name)]
    flags = [a for a in tree.args if isinstance(a, pyast.Name)]
    if len(numbers) != 2 or tree.args[:2] != numbers:
        raise expr.error(f"{usage}: a range takes its low and high ends first", tree, code="E175")
    low, high = (_literal(expr, a) for a in numbers)
    scale = "uniform"
    for flag in flags:
        if flag.id not in ("log", "pow2") or (flag.id == "pow2" and kind == "float") or scale != "uniform":
            raise expr.error(f"`{flag.id}` is not a scale of `{kind}`", flag, hint=f"write {usage}", code="E175")
        scale = flag.id
    q = None
    for kw in tree.keywords:
        if kw.arg != "q":
            raise expr.error(f"`{kind}` takes no `{kw.arg}=`", kw.value, hint=f"write {usage}", code="E175")
        q = _literal(expr, kw.value)
        if q <= 0 or (kind == "int" and not isinstance(q, int)):
            raise expr.error(f"the quantum `q={show(q)}` must be a positive {'whole ' if kind == 'int' else ''}number",
                             kw.value, code="E175")
    if kind == "int" and not (isinstance(low, int) and isinstance(high, int)):
        raise expr.error(f"`int` takes whole ends, got {show(low)} and {show(high)}", tree,
                         hint="for a range of real numbers write `float(...)`", code="E175")
    if not low <= high:
        raise expr.error(f"the range's low end {show(low)} is above its high end {show(high)}", tree, code="E175")
    if scale in ("log", "pow2") and low <= 0:
        raise expr.error(f"a `{scale}` range needs a positive low end, got {show(low)}", tree, code="E175")
    d = Distribution(kind, low=low, high=high, scale=scale, q=q, text=expr.text)
    if d.size() == 0:
        raise expr.error(f"the range `{expr.text}` holds no value", tree, code="E175")
    return d


def _literal(expr: Expr, node, words: bool = False):
    if isinstance(node, pyast.UnaryOp) and isinstance(node.op, pyast.USub) and isinstance(node.operand, pyast.Constant):
        return -_literal(expr, node.operand)
    if isinstance(node, pyast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if words and isinstance(node, pyast.Name):
        return node.id
    raise expr.error(f"`{pyast.get_source_segment(expr.text, node)}`: a distribution takes literal "
                     f"{'numbers or words' if words else 'numbers'}", node,
                     hint="derive values on `let` lines, from named open values", code="E175")


# ---- evaluation ---------------------------------------------------------------------------

class _Eval:
    def __init__(self, expr: Expr, env: dict):
        self.expr, self.env = expr, env

    def run(self, node):
        try:
            return self.node(node)
        except SpaceError:
            raise
        except (TypeError, ValueError, ZeroDivisionError, OverflowError, IndexError, RecursionError) as e:
            raise self.expr.error(f"`{self.expr.text}` cannot be computed: {_why(e)}", node, code="E173") from None

    def node(self, n):
        if isinstance(n, pyast.Constant):
            return n.value
        if isinstance(n, pyast.Name):
            if n.id not in self.env:
                raise self.expr.error(f"unknown name `{n.id}`", n, code="E172",
                                      hint=_names_hint(n.id, self.env))
            return self.env[n.id]
        if isinstance(n, pyast.List):
            return [self.node(e) for e in n.elts]
        if isinstance(n, pyast.UnaryOp):
            v = self.node(n.operand)
            if isinstance(n.op, pyast.Not):
                return _elementwise(lambda x: not x, v)
            return _elementwise(lambda x: -_num(x) if isinstance(n.op, pyast.USub) else _num(x), v)
        if isinstance(n, pyast.BinOp):
            a, b = self.node(n.left), self.node(n.right)
            op = _BINOPS[type(n.op)]
            return _elementwise(lambda x, y: _guard_pow(op, n.op, _num(x), _num(y)), a, b)
        if isinstance(n, pyast.Compare):
            left, result = self.node(n.left), True
            for op, right_node in zip(n.ops, n.comparators):
                right = self.node(right_node)
                step = _elementwise(_CMPS[type(op)], left, right)
                result = _elementwise(lambda p, q: bool(p and q), result, step) if result is not True else step
                left = right
            return result
        if isinstance(n, pyast.BoolOp):
            values = [self.node(v) for v in n.values]
            merged = values[0]
            for v in values[1:]:
                merged = _elementwise((lambda p, q: bool(p and q)) if isinstance(n.op, pyast.And)
                                      else (lambda p, q: bool(p or q)), merged, v)
            return merged
        if isinstance(n, pyast.IfExp):
            test = self.node(n.test)
            if isinstance(test, list):  # item by item, as numpy's where
                return _elementwise(lambda c, a, b: a if c else b, test, self.node(n.body), self.node(n.orelse))
            return self.node(n.body) if test else self.node(n.orelse)
        if isinstance(n, pyast.Subscript):
            seq, i = self.node(n.value), self.node(n.slice)
            if isinstance(i, bool) or not isinstance(i, int) and not (isinstance(i, float) and i.is_integer()):
                raise TypeError(f"an index is a whole number, got {show(i)}")
            items = _list(seq)
            if not -len(items) <= int(i) < len(items):
                raise IndexError(f"index {show(i)} is outside a list of {len(items)}")
            return items[int(i)]
        if isinstance(n, pyast.Call):
            fn = FUNCTIONS[n.func.id][0]
            return fn(*(self.node(a) for a in n.args))
        raise AssertionError(f"unchecked node {type(n).__name__}")


def _compile(n) -> Callable:
    """The tree as nested closures (what `evaluate` runs): the same rules as `_Eval`, without
    dispatching on node types at every step. Any failure falls back to `_Eval` for its error."""
    if isinstance(n, pyast.Constant):
        value = n.value
        return lambda env: value
    if isinstance(n, pyast.Name):
        name = n.id
        return lambda env: env[name]
    if isinstance(n, pyast.List):
        items = [_compile(e) for e in n.elts]
        return lambda env: [f(env) for f in items]
    if isinstance(n, pyast.UnaryOp):
        f = _compile(n.operand)
        if isinstance(n.op, pyast.Not):
            return lambda env: _elementwise(lambda x: not x, f(env))
        sign = -1 if isinstance(n.op, pyast.USub) else 1
        return lambda env: _elementwise(lambda x: sign * _num(x), f(env))
    if isinstance(n, pyast.BinOp):
        a, b, op, kind = _compile(n.left), _compile(n.right), _BINOPS[type(n.op)], n.op

        def binop(env):
            x, y = a(env), b(env)
            if type(x) in (int, float) and type(y) in (int, float) and not isinstance(kind, pyast.Pow):
                return op(x, y)
            return _elementwise(lambda p, q: _guard_pow(op, kind, _num(p), _num(q)), x, y)
        return binop
    if isinstance(n, pyast.Compare):
        parts = [_compile(n.left)] + [_compile(c) for c in n.comparators]
        cmps = [_CMPS[type(op)] for op in n.ops]

        def compare(env):
            left, result = parts[0](env), True
            for cmp, right_fn in zip(cmps, parts[1:]):
                right = right_fn(env)
                step = _elementwise(cmp, left, right)
                result = _elementwise(lambda p, q: bool(p and q), result, step) if result is not True else step
                left = right
            return result
        return compare
    if isinstance(n, pyast.BoolOp):
        fns = [_compile(v) for v in n.values]
        join = (lambda p, q: bool(p and q)) if isinstance(n.op, pyast.And) else (lambda p, q: bool(p or q))

        def boolop(env):
            merged = fns[0](env)
            for f in fns[1:]:
                merged = _elementwise(join, merged, f(env))
            return merged
        return boolop
    if isinstance(n, pyast.IfExp):
        test, body, orelse = _compile(n.test), _compile(n.body), _compile(n.orelse)

        def ifexp(env):
            t = test(env)
            if isinstance(t, list):
                return _elementwise(lambda c, a, b: a if c else b, t, body(env), orelse(env))
            return body(env) if t else orelse(env)
        return ifexp
    if isinstance(n, pyast.Subscript):
        seq, index = _compile(n.value), _compile(n.slice)

        def subscript(env):
            items, i = _list(seq(env)), index(env)
            if isinstance(i, bool) or not isinstance(i, int) or not -len(items) <= i < len(items):
                raise IndexError(i)
            return items[i]
        return subscript
    if isinstance(n, pyast.Call):
        fn = FUNCTIONS[n.func.id][0]
        args = [_compile(a) for a in n.args]
        return lambda env: fn(*(a(env) for a in args))
    raise AssertionError(f"unchecked node {type(n).__name__}")


def _guard_pow(op, kind, x, y):
    if isinstance(kind, pyast.Pow) and abs(y) > 1024:
        raise OverflowError(f"the power {show(y)} is too large")
    return op(x, y)


def _why(e: Exception) -> str:
    if isinstance(e, ZeroDivisionError):
        return "division by zero"
    if isinstance(e, TypeError) and "not supported" in str(e):
        return "an operation between a word and a number"
    return str(e).rstrip(".") or type(e).__name__


def _names_hint(name: str, env: dict) -> str:
    from .suggest import did_you_mean

    return did_you_mean(name, list(env)) or ("names here: " + ", ".join(sorted(env)) if env else
                                             "define it on a `let` line: `" + name + " = ...`")
