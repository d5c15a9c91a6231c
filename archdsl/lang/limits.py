"""The documented limits of a spec, and the range of every number a spec or `--set` gives.

A spec past a limit is refused with a ResourceError (E903) before anything is expanded, so
`check`, `compile` and `diff` stay analytic and bounded (seconds, not gigabytes) whatever the
input. The numeric ranges are checked where a value is read (resolve, overrides, to_ir), so a
new op or field gets them by declaring its kind, not by repeating the check.
"""
from __future__ import annotations

import math

from .errors import ArchError, ResourceError, Span

# Size of what a spec may describe.
MAX_SPEC_CHARS = 256 * 1024      # one .arch file or loads() text (convnext_t.arch is under 1 KB)
MAX_EXTENDS = 64                 # length of an `extends` chain
MAX_STAGE_DEPTH = 10_000         # blocks in one stage
MAX_BLOCKS = 20_000              # blocks in the whole network
MAX_OPS = 50_000                 # ops after expanding every stage (ConvNeXt-XL has about 300)

# Ranges of whole numbers (inclusive).
INT_RANGES: dict[str, tuple[int, int]] = {
    "width": (1, 1 << 16),       # channels of a stage or an op
    "classes": (1, 1 << 20),
    "channels": (1, 4096),       # input C
    "size": (1, 16_384),         # input H and W
    "depth": (1, MAX_STAGE_DEPTH),
    "stride": (1, 1024),
    "kernel": (1, 1024),
    "groups": (1, 1 << 16),
}

# Ranges of op values, by op name: (low, high, low inclusive, high inclusive). Every op's value
# must be finite; dropout and droppath check their probability in their own OpDef (E305).
VALUE_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "layerscale": (0.0, 1e3, False, True),     # the initial scale: positive
}
EPS_RANGE = (0.0, 1.0, False, True)            # `eps=E` of a norm
MOMENTUM_RANGE = (0.0, 1.0, True, True)        # `momentum=M` of a BatchNorm


def check_int(kind: str, value: int, what: str, span: Span | None = None, code: str = "E208") -> int:
    low, high = INT_RANGES[kind]
    if not low <= value <= high:
        raise ArchError(f"{what} must be between {low:,} and {high:,}, got {value:,}", span,
                        hint=f"the {kind} limits are documented in docs/guarantees.md",
                        code=code)
    return value


def in_range(value: float, bounds: tuple[float, float, bool, bool]) -> bool:
    low, high, low_in, high_in = bounds
    if not math.isfinite(value):
        return False
    return (low <= value if low_in else low < value) and (value <= high if high_in else value < high)


def describe(bounds: tuple[float, float, bool, bool]) -> str:
    low, high, low_in, high_in = bounds
    return f"{'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"


def too_big(what: str, value: int, limit: int, span: Span | None, hint: str) -> ResourceError:
    return ResourceError(f"{what} is {value:,}; the most archdsl accepts is {limit:,}", span,
                         hint=hint, code="E903")
