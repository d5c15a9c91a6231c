"""A space: a spec whose values are left open. This module reads a spec's `let { }` and
`require { }` sections and the open words of its other sections, and binds them to values:

    space = space_of(chain, merged)        # None for a spec with nothing open
    env = space.bind({"k": 7})             # every value, free and derived; constraints checked
    word = space.substitute(word, env)     # `dwconv{k}` -> `dwconv7`

A point is a space with every open value given; `resolve` binds the values it is given
(`--set k=7`) and refuses a space that still has open ones (E170), pointing at the first.
Sampling, costing and sweeps live above (archdsl/spaces, archdsl/sweep)."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

from . import ast
from .errors import ErrorCollector, Span
from .expr import DISTRIBUTIONS, FUNCTIONS, Distribution, Expr, SpaceError, distribution_of, parse_expr, show

_HOLE = re.compile(r"\{([^{}]*)\}")
_INLINE = re.compile(r"(?:choice|int|float)\(.*\)", re.S)
RESERVED = set(FUNCTIONS) | set(DISTRIBUTIONS) | {"log", "pow2", "q"}


@dataclass
class Value:
    """One named value: open (`dist` set) or derived from others (`expr`)."""

    name: str
    expr: Expr
    dist: Distribution | None
    span: Span
    anonymous: bool = False     # written in place (`choice(gelu, relu)` as an op word)

    @property
    def free(self) -> bool:
        return self.dist is not None


@dataclass
class Space:
    values: dict[str, Value]              # in the order they are computed (each after what it reads)
    requires: list[Expr]
    holes: dict[tuple, list]              # (word text, span) -> its parts: text and Exprs
    hash: str
    name: str = ""
    words: list[ast.Word] = field(default_factory=list)   # every open word, in file order

    @property
    def free(self) -> list[Value]:
        return [v for v in self.values.values() if v.free]

    def open_error(self, given: dict) -> SpaceError | None:
        missing = [v for v in self.free if v.name not in given]
        if not missing:
            return None
        first = missing[0]
        names = ", ".join(f"`{v.name}`" for v in missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        example = " ".join(f"--set {v.name}={show(example_value(v.dist))}" for v in missing[:3] if not v.anonymous)
        return SpaceError(f"`{self.name}` is a space: {len(missing)} value{'s' * (len(missing) > 1)} "
                          f"{'are' if len(missing) > 1 else 'is'} open ({names}; `{first.name}` is "
                          f"`{first.dist.text}`)", first.span,
                          hint="sample points with `archdsl sample SPEC -n N -o DIR`, or give every open value"
                          + (f", e.g. {example}" if example else " with --set NAME=VALUE"), code="E170")

    def take(self, overrides: dict) -> tuple[dict, dict]:
        """(the overrides that give values of this space, the rest)."""
        mine = {k: v for k, v in overrides.items() if k in self.values}
        return mine, {k: v for k, v in overrides.items() if k not in self.values}

    def bind(self, given: dict, check: bool = True, drawn: bool = False) -> dict:
        """Every value, from the open ones `given`; the constraints checked unless `check=False`.
        `drawn`: the values come from a sampler of this space (in range by construction)."""
        if drawn:
            env = dict(given)
            for v in self.values.values():
                if not v.free:
                    env[v.name] = v.expr.evaluate(env)
            broken = self.broken(env) if check else None
            if broken:
                raise broken
            return env
        for key in given:
            if key in self.values and not self.values[key].free:
                v = self.values[key]
                raise SpaceError(f"`{key}` is derived (`{v.expr.text}`), not open; give the values it is "
                                 "computed from", v.span, code="E176")
        error = self.open_error(given)
        if error:
            raise error
        env: dict = {}
        for v in self.values.values():
            env[v.name] = coerce(v, given[v.name]) if v.free else v.expr.evaluate(env)
        if check:
            broken = self.broken(env)
            if broken:
                raise broken
        return env

    def broken(self, env: dict) -> SpaceError | None:
        """The first constraint the values break, as an error naming the values it reads."""
        for req in self.requires:
            result = req.evaluate(env)
            if not (all(result) if isinstance(result, list) else result):
                shown = ", ".join(f"{n}={show(env[n])}" for n in sorted(req.names))
                return SpaceError(f"the constraint `{req.text}` does not hold ({shown})", req.span,
                                  hint="sampling skips such points; pick values that satisfy it", code="E174")
        return None

    def substitute(self, word: ast.Word, env: dict) -> ast.Word:
        key = (word.text, word.span)
        return word.model_copy(update={"text": self.fill(self.holes[key], env, word.span)}) if key in self.holes \
            else word

    def fill(self, parts: list, env: dict, word_span: Span) -> str:
        """The text of an open word (its `parts`, from `holes`) with the point's values."""
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = env[part.text] if part.text in self.values else part.evaluate(env)
            if isinstance(value, (list, bool)):
                what = "a list" if isinstance(value, list) else "a truth value"
                raise SpaceError(f"`{{{part.text}}}` is {what}, {show(value)}, where a number or a word stands",
                                 word_span, hint="pick one item of a list: `{ws[0]}`" if isinstance(value, list)
                                 else None, code="E176")
            out.append(show(value))
        return "".join(out)

    def point_values(self, env: dict) -> dict:
        """The open values of a bound point, by name."""
        return {v.name: env[v.name] for v in self.free}


def example_value(dist: Distribution):
    if dist.kind == "choice":
        return dist.options[0]
    return dist.low


def coerce(v: Value, raw):
    """A value given for `v` (from --set, a sampler or a trial), checked against its distribution."""
    d = v.dist
    value = raw
    if isinstance(raw, str):
        text = raw.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                value = text
    bad = None
    if d.kind == "choice":
        if value not in d.options:
            bad = "one of " + ", ".join(show(o) for o in d.options)
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        bad = f"a number from {show(d.low)} to {show(d.high)}"
    else:
        if d.kind == "int" and value != int(value):
            bad = f"a whole number from {show(d.low)} to {show(d.high)}"
        elif not d.low <= value <= d.high:
            bad = f"a number from {show(d.low)} to {show(d.high)}"
        if d.kind == "int":
            value = int(value)
    if bad:
        raise SpaceError(f"`{v.name}={show(value)}` is outside its values: {bad}", v.span,
                         hint=f"`{v.name}` is `{d.text}`", code="E176")
    return value


# ---- reading a space from a spec and its ancestors ---------------------------------------

def walk_words(node, found: list) -> None:
    """Every Word under an AST node (in field order), for finding open words."""
    if isinstance(node, ast.Word):
        found.append(node)
    elif isinstance(node, ast.Node):
        for _, v in node:
            walk_words(v, found)
    elif isinstance(node, (tuple, list)):
        for v in node:
            walk_words(v, found)
    elif isinstance(node, dict):
        for v in node.values():
            walk_words(v, found)


def map_words(node, fn):
    """A copy of an AST node (or tuple/dict of them) with `fn` applied to every Word; nodes
    with nothing changed are returned as they are."""
    if isinstance(node, ast.Word):
        return fn(node)
    if isinstance(node, ast.Node):
        update = {}
        for k, v in node:
            new = map_words(v, fn)
            if new is not v:
                update[k] = new
        return node.model_copy(update=update) if update else node
    if isinstance(node, tuple):
        items = tuple(map_words(v, fn) for v in node)
        return node if all(a is b for a, b in zip(items, node)) else items
    if isinstance(node, dict):
        items = {k: map_words(v, fn) for k, v in node.items()}
        return node if all(items[k] is node[k] for k in node) else items
    return node


def is_open(word: ast.Word) -> bool:
    return "{" in word.text or bool(_INLINE.fullmatch(word.text))


def _expr_span(word: ast.Word, offset: int, length: int) -> Span:
    s = word.span
    return Span(s.path, s.line, s.column + offset, s.line, s.column + offset + length)


def space_hash(chain: list[ast.SpecFile]) -> str:
    """The content of a space and its ancestors, without spans, paths and comments: what a study
    is keyed by. Reformatting or moving the file keeps it; changing any value changes it."""
    from .printer import strip

    data = json.dumps([strip(s) for s in chain], sort_keys=True, default=str)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def space_of(chain: list[ast.SpecFile], sections: list) -> Space | None:
    """The space of a spec (chain: the spec and its ancestors, nearest first; sections: the AST
    nodes in force after merging), or None when nothing is open."""
    lets: dict[str, ast.LetLine] = {}
    requires: tuple[ast.Word, ...] = ()
    for spec in reversed(chain):   # root first: a child's `let NAME` replaces its parent's
        for line in spec.lets or ():
            lets[line.name.text] = line
        if spec.requires is not None:
            requires = spec.requires
    words: list[ast.Word] = []
    for node in sections:
        walk_words(node, words)
    open_words = [w for w in words if is_open(w)]
    if not lets and not requires and not open_words:
        return None
    errors = ErrorCollector()
    values: dict[str, Value] = {}
    for name, line in lets.items():
        if name in RESERVED:
            errors.add(SpaceError(f"`{name}` is a word of the expression language; name the value otherwise",
                                  line.name.span, code="E172"))
            continue
        try:
            e = parse_expr(line.expr.text, line.expr.span, f"the value of `{name}`")
            values[name] = Value(name, e, distribution_of(e), line.span)
        except SpaceError as err:
            errors.add(err)
    holes: dict[tuple, list] = {}
    for w in open_words:
        try:
            holes[(w.text, w.span)] = _template(w, values)
        except SpaceError as err:
            errors.add(err)
    reqs = []
    for r in requires:
        try:
            reqs.append(parse_expr(r.text, r.span, "a constraint"))
        except SpaceError as err:
            errors.add(err)
    errors.raise_if_any()
    order = _order(values, errors)
    for parts in holes.values():
        for p in parts:
            if isinstance(p, Expr) and p.text not in values:
                _known(p, values, errors)
    for r in reqs:
        _known(r, values, errors)
    errors.raise_if_any()
    return Space({n: values[n] for n in order}, reqs, holes, space_hash(chain), chain[0].name.text, open_words)


def _template(word: ast.Word, values: dict[str, Value]) -> list:
    """`dwconv{k}` -> ["dwconv", Expr(k)]; a distribution in place becomes an anonymous value."""
    text = word.text
    if _INLINE.fullmatch(text):
        text = "{" + text + "}"
        spans = [(0, len(word.text))]
    else:
        spans = [(m.start(1), len(m.group(1))) for m in _HOLE.finditer(text)]
    parts: list = []
    pos, k = 0, 0
    for m in _HOLE.finditer(text):
        if m.start() > pos:
            parts.append(text[pos:m.start()])
        offset, length = spans[k]
        k += 1
        inner = m.group(1)
        if not inner.strip():
            raise SpaceError("an empty `{}` in a word", word.span, hint="write a value or an expression: `{k}`",
                             code="E171")
        e = parse_expr(inner, _expr_span(word, offset + (len(inner) - len(inner.lstrip())), length),
                       "an open value")
        dist = distribution_of(e)
        if dist is not None:  # written in place: a value of its own, named by where it stands
            name = f"@{word.span.line}:{word.span.column}"
            values.setdefault(name, Value(name, e, dist, word.span, anonymous=True))
            e = Expr(name, e.span, e.tree, {name})
        parts.append(e)
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    if "{" in "".join(p for p in parts if isinstance(p, str)) or "}" in "".join(p for p in parts if isinstance(p, str)):
        raise SpaceError(f"unbalanced braces in `{word.text}`", word.span, code="E171")
    return parts


def _known(e: Expr, values: dict, errors: ErrorCollector) -> None:
    import ast as pyast

    for node in pyast.walk(e.tree):
        if isinstance(node, pyast.Name) and node.id in e.names and node.id not in values:
            from .suggest import did_you_mean
            errors.add(e.error(f"unknown name `{node.id}`", node, code="E172",
                               hint=did_you_mean(node.id, [n for n in values if not n.startswith("@")])
                               or f"define it on a `let` line: `{node.id} = ...`"))


def _order(values: dict[str, Value], errors: ErrorCollector) -> list[str]:
    """Values in an order where each comes after the values it reads; a cycle is an error."""
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join(path[path.index(name):] + [name])
            raise SpaceError(f"values derived from each other in a cycle: {cycle}", values[name].span,
                             code="E172")
        state[name] = 1
        v = values[name]
        for dep in sorted(v.expr.names):
            if dep in values:
                visit(dep, path + [name])
        state[name] = 2
        order.append(name)

    try:
        for name in values:
            visit(name, [])
    except SpaceError as e:
        errors.add(e)
        return list(values)
    for v in values.values():
        _known(v.expr, values, errors)
    return order
