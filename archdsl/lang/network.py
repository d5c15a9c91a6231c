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
    init: InitSpec = InitSpec()
    train: TrainRecipe = TrainRecipe()
    spans: dict[str, Span] = {}     # where each section/scalar was stated, for errors

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(s.width for s in self.stages)

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(s.depth for s in self.stages)
