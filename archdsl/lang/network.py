"""The resolved network: one spec with its `extends` chain applied and overrides set.
This is what the IR is built from, what `diff` compares and what training reads."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from . import ast
from .errors import Span
from .recipe import TrainRecipe


class StageSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    width: int
    block: str
    depth: int
    stride: int = 1
    values: dict[str, float] = {}   # per-stage values the block reads: `t=6` -> {"t": 6.0}
    span: Span | None = None


class InitSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    scheme: str = "default"
    arg: str | None = None
    span: Span | None = None


class Network(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    path: str                       # the file it was read from
    chain: tuple[str, ...] = ()     # names of the specs it extends, nearest first
    input: tuple[int, int, int]
    classes: int
    blocks: dict[str, ast.Block]
    stem: tuple[ast.Op, ...] = ()
    downsample: tuple[ast.Op, ...] | None = None
    stages: tuple[StageSpec, ...]
    head: tuple[ast.Op, ...] = ()
    taps: tuple[ast.Word, ...] = ()  # the maps a features build returns (`taps`), in order, with their places
    init: InitSpec = InitSpec()
    train: TrainRecipe = TrainRecipe()
    spans: dict[str, Span] = {}     # where each section/scalar was stated, for errors
    values: dict[str, object] = {}  # a point of a space: the space's hash (`space`) and its open values

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(s.width for s in self.stages)

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(s.depth for s in self.stages)

    def __repr__(self) -> str:
        from .views import network_text
        return network_text(self)

    def _repr_html_(self) -> str:
        from .views import network_html
        return network_html(self)


# Fields that label a network or say where it came from, not what it computes. `taps` say
# which maps a features build returns; the weights and the classifier are the same without them.
_NOT_STRUCTURE = {"name", "path", "chain", "spans", "train", "values", "taps"}


def canonical(net: Network) -> dict:
    """What the network computes, as plain JSON data: every field but its labels, places and
    recipe, with every `span` dropped. Two specs that build the same network compare equal
    (a resumed run checks it against the network its checkpoint was trained with)."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "span"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(net.model_dump(mode="json", exclude=_NOT_STRUCTURE))


def first_difference(a, b, where: str = "") -> str | None:
    """The first place two canonical networks differ, as `path: a -> b`; None when equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            found = first_difference(a.get(k), b.get(k), f"{where}.{k}" if where else str(k))
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{where}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{where or 'network'}: {_short(a)} -> {_short(b)}"


def _short(value) -> str:
    import json

    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."
