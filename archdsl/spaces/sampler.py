"""Drawing the open values of a space: pycls's samplers (uniform, log-uniform, powers of two,
each rounded to a quantum) and the count of points a space holds."""
from __future__ import annotations

import math
import random

from ..lang.expr import Distribution, pow2_values
from ..lang.space import Space


def draw(d: Distribution, rng: random.Random):
    """One value of `d`."""
    if d.kind == "choice":
        return d.options[rng.randrange(len(d.options))]
    if d.scale == "pow2":
        values = pow2_values(d.low, d.high)
        return values[rng.randrange(len(values))]
    if d.kind == "int" and d.q is None and d.scale == "uniform":
        return rng.randint(d.low, d.high)
    x = math.exp(rng.uniform(math.log(d.low), math.log(d.high))) if d.scale == "log" else rng.uniform(d.low, d.high)
    if d.q is not None:
        x = _quantize(x, d.q, d.low, d.high)
    if d.kind == "int":
        x = min(max(int(round(x)), d.low), d.high)
    return x


def _quantize(x: float, q: float, low: float, high: float) -> float:
    """`x` to the nearest multiple of `q` that lies in [low, high]."""
    v = round(x / q) * q
    if v < low:
        v = math.ceil(low / q) * q
    if v > high:
        v = math.floor(high / q) * q
    return int(v) if isinstance(q, int) else v


def draw_point(space: Space, rng: random.Random) -> dict:
    """One value for each open value of the space (not yet checked against its constraints)."""
    return {v.name: draw(v.dist, rng) for v in space.free}


def count_points(space: Space) -> int | None:
    """How many points the open values span (before the constraints); None when a float range
    without a quantum makes it unbounded."""
    total = 1
    for v in space.free:
        size = v.dist.size()
        if size is None:
            return None
        total *= size
    return total
