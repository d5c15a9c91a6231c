"""Points of a space inside a complexity window, and what a space costs over a sample.

    result = sample(coster, n=8, seed=0, macs=parse_window("4.4G:4.5G"))
    write_points(coster, result, "out/")          # out/<space>_000.arch ... and points.json

Points are drawn (never enumerated: a space of 10^30 points is sampled like one of ten),
checked against the constraints, costed without torch, and kept when inside every window.
A point that does not check (a width its groups do not divide) is skipped and counted, with
its values and the location of the error. Same space, window and seed: the same points."""
from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..lang.errors import ArchError
from ..lang.expr import SpaceError, show
from ..lang.flatten import flatten
from ..lang.printer import format_spec
from .cost import Cost, Coster
from .sampler import count_points, draw_point

_SUFFIX = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


class WindowError(SpaceError):
    code = "E177"


def parse_window(text: str, what: str) -> tuple[float, float]:
    """`4.4G:4.5G`, `:5M`, `1M:` -> (low, high), ends included; an end left out is open."""
    ends = text.split(":")
    if len(ends) != 2:
        raise WindowError(f"`--{what} {text}` is not LOW:HIGH", hint=f"for example `--{what} 4.4G:4.5G` or `:5M`")
    out = []
    for end, default in zip(ends, (0.0, math.inf)):
        end = end.strip()
        m = re.fullmatch(r"(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)\s*([kKMGT]?)", end)
        if not end:
            out.append(default)
        elif m:
            out.append(float(m.group(1)) * _SUFFIX[m.group(2)])
        else:
            raise WindowError(f"`--{what} {text}`: `{end}` is not a count", hint="numbers with K, M or G: `4.4G`")
    if out[0] > out[1]:
        raise WindowError(f"`--{what} {text}` is empty: its low end is above its high end")
    return out[0], out[1]


def human(n: float) -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.4g}{suffix}"
    return f"{n:.4g}"


@dataclass
class Failure:
    values: dict
    error: ArchError
    count: int = 1


@dataclass
class SampleResult:
    points: list[tuple[dict, Cost]] = field(default_factory=list)
    drawn: int = 0
    constrained: int = 0                              # broke a `require`
    failed: dict[tuple, Failure] = field(default_factory=dict)   # did not check, by (code, place)
    outside: int = 0                                  # checked, outside a window
    seen: dict[str, list[float]] = field(default_factory=lambda: {"params": [], "macs": [], "activations": []})

    @property
    def failures(self) -> int:
        return sum(f.count for f in self.failed.values())

    @property
    def acceptance(self) -> float:
        return len(self.points) / self.drawn if self.drawn else 0.0


def draw_costs(coster: Coster, rng: random.Random, result: SampleResult) -> tuple[dict, Cost] | None:
    """Draw one point and cost it; None (and the reason counted) when it breaks a constraint or
    does not check."""
    values = draw_point(coster.space, rng) if coster.space else {}
    result.drawn += 1
    try:
        cost = coster.cost(values, drawn=True)
    except SpaceError as e:
        if e.code == "E174":
            result.constrained += 1
            return None
        raise
    except ArchError as e:
        first = e.errors[0]
        key = (first.code, first.span)
        if key in result.failed:
            result.failed[key].count += 1
        else:
            result.failed[key] = Failure(values, first)
        return None
    for k in ("params", "macs", "activations"):
        result.seen[k].append(getattr(cost, k))
    return values, cost


def sample(coster: Coster, n: int, seed: int, macs: tuple[float, float] | None = None,
           params: tuple[float, float] | None = None, max_draws: int | None = None) -> SampleResult:
    """`n` distinct points inside the windows. WindowError when none can be found: the window is
    outside what the draws reached (the smallest and largest are named), or too narrow."""
    total = count_points(coster.space) if coster.space else 1
    if total is not None and total < n:
        raise WindowError(f"`{coster.name}` holds {total:,} point{'s' * (total != 1)}"
                          f"{' (nothing in it is open)' if coster.space is None else ''}; {n:,} were asked for",
                          hint=f"ask for at most {total:,}" + ("" if coster.space is None else
                                                               ", or open more values in a `let { }`"))
    rng = random.Random(seed)
    result = SampleResult()
    limit = max_draws or max(20_000, 200 * n)
    seen_points: set = set()
    windows = [(k, w) for k, w in (("macs", macs), ("params", params)) if w is not None]
    while len(result.points) < n and result.drawn < limit:
        got = draw_costs(coster, rng, result)
        if got is None:
            continue
        values, cost = got
        if any(not lo <= getattr(cost, k) <= hi for k, (lo, hi) in windows):
            result.outside += 1
            if result.drawn % 2000 == 0 and not result.points:
                _refuse_if_unreachable(coster, result, windows)
            continue
        key = tuple(sorted((k, show(v)) for k, v in values.items()))
        if key in seen_points:
            continue
        seen_points.add(key)
        result.points.append((values, cost))
    if not result.points:
        _refuse_if_unreachable(coster, result, windows, final=True)
    return result


def _refuse_if_unreachable(coster: Coster, result: SampleResult, windows: list, final: bool = False) -> None:
    checked = len(result.seen["macs"])
    if not checked:
        why = next(iter(result.failed.values())).error if result.failed else None
        raise WindowError(f"none of {result.drawn:,} points drawn from `{coster.name}` checks "
                          f"({result.constrained:,} broke a constraint, {result.failures:,} did not check)",
                          why.span if why else None,
                          hint=f"the first failure: {why.message}" if why else "loosen the `require` lines")
    for k, (lo, hi) in windows:
        found = result.seen[k]
        if max(found) < lo or min(found) > hi:
            raise WindowError(f"`{coster.name}` does not reach the {k} window {human(lo)}:{human(hi)}: "
                              f"{checked:,} points drawn range from {human(min(found))} to {human(max(found))} {k}",
                              hint=f"pick a window inside {human(min(found))}:{human(max(found))}")
    if final:
        raise WindowError(f"no point of `{coster.name}` fell in the window after {result.drawn:,} draws "
                          f"(the window is inside the range the space reaches, but narrow)",
                          hint="widen the window, or raise the number of draws")


def quantiles(values: list[float], qs=(0.0, 0.25, 0.5, 0.75, 1.0)) -> list[float]:
    """Quantiles by linear interpolation (numpy's default)."""
    xs = sorted(values)
    out = []
    for q in qs:
        pos = q * (len(xs) - 1)
        lo, hi = int(math.floor(pos)), int(math.ceil(pos))
        out.append(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo))
    return out


def point_name(coster: Coster, i: int) -> str:
    return f"{coster.name}_{i:03d}"


def write_points(coster: Coster, result: SampleResult, out: Path) -> list[Path]:
    """Each point as a self-contained spec (flattened, through the printer, starting with the
    comments that name its space and values) and `points.json` listing them."""
    from ..lang.ast import Comment
    from ..lang.errors import Span
    from ..lang.parser import parse

    out.mkdir(parents=True, exist_ok=True)
    paths, index = [], []
    for i, (values, cost) in enumerate(result.points):
        name = point_name(coster, i)
        net = coster.network(values)
        flat = flatten(net, name=name)
        note = Comment(text=f"# {cost.params:,} params, {cost.macs / 1e9:.3f} GMACs at "
                       f"{'x'.join(map(str, net.input))}", span=Span(name, 1, 1, 1, 1))
        text = format_spec(flat.model_copy(update={"comments": flat.comments + (note,)}), layout=False)
        parse(text, name)  # what is written reads back
        path = out / f"{name}.arch"
        path.write_text(text)
        paths.append(path)
        index.append({"name": name, "file": path.name, "values": values, "params": cost.params,
                      "macs": cost.macs, "activations": cost.activations})
    space = coster.space.hash if coster.space else None
    (out / "points.json").write_text(json.dumps({"space": coster.name, "space_hash": space,
                                                 "path": coster.path, "points": index}, indent=2) + "\n")
    return paths
