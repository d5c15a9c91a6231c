"""The syntax tree of one .arch file: words with spans, no interpretation yet."""
from __future__ import annotations

from typing import Union

from pydantic import BaseModel, ConfigDict

from .errors import Span


class Node(BaseModel):
    model_config = ConfigDict(frozen=True)


class Word(Node):
    text: str
    span: Span


class Op(Node):
    """`dwconv7`, `pwconv 4x`, `conv3 0.25x stride g32`: an op word and its argument words."""

    name: Word
    args: tuple[Word, ...] = ()
    span: Span


class Residual(Node):
    """`residual { body } [shortcut op, op]`, or `residual { body } shortcut none` (then
    `shortcut` is None and `shortcut_none` is the word `none`)."""

    body: tuple["Stmt", ...]
    shortcut: tuple[Op, ...] | None = None
    shortcut_none: Word | None = None
    span: Span


class Gate(Node):
    """`gate { body }`: the input times the body's output (squeeze-and-excitation)."""

    body: tuple["Stmt", ...]
    span: Span


class Guard(Node):
    """`if NAME CMP VALUE { body }`: the body is there only in stages whose value satisfies it."""

    name: Word
    cmp: Word
    value: Word
    body: tuple["Stmt", ...]
    span: Span


class Join(Node):
    """`concat { body }`: the input and the body's output side by side along the channels
    (DenseNet); `subtract { body }`: the body's output less the input (PoolFormer's
    `pool(x) - x`). `kind` is the keyword."""

    kind: str
    body: tuple["Stmt", ...]
    span: Span


Stmt = Union[Op, Residual, Gate, Guard, Join]
Residual.model_rebuild()
Gate.model_rebuild()
Guard.model_rebuild()
Join.model_rebuild()


class Block(Node):
    """`block NAME[(PARAM, ...)] { body }`: PARAMs are per-stage values the stage lines give."""

    name: Word
    params: tuple[Word, ...] = ()
    body: tuple[Stmt, ...]
    span: Span


class Stage(Node):
    """`96 convnext x3 s2`, `24 inverted x2 s2 t=6`: args are `sN` and `NAME=VALUE` words."""

    width: Word
    block: Word
    depth: Word
    args: tuple[Word, ...] = ()
    span: Span


class Setting(Node):
    """A line of `train { }` or `init`: a key and comma-separated groups of words."""

    key: Word
    groups: tuple[tuple[Word, ...], ...]
    span: Span


class SetLine(Node):
    """`set KEY VALUE[,VALUE...]`: an override written in the file (`set depths 3,3,9,3`)."""

    key: Word
    values: tuple[Word, ...]
    span: Span

    @property
    def value(self) -> str:
        return ",".join(w.text for w in self.values)


class LetLine(Node):
    """`NAME = EXPR` in `let { }`: an open value (`k = choice(3, 5, 7)`) or one derived from
    others (`ws = quant(w0 * wm ** s, 8)`). `expr` is the expression's text and span."""

    name: Word
    expr: Word
    span: Span


class Comment(Node):
    """`# text`, kept so a printer can write the file back. `trailing`: it ends a line of code
    (its span's column says where it stood); otherwise it sits on a line of its own."""

    text: str            # with its `#`
    trailing: bool = False
    span: Span


class SpecFile(Node):
    """One parsed file. A field left None was not stated in this file."""

    path: str
    name: Word
    extends: Word | None = None
    input: Word | None = None
    classes: Word | None = None
    blocks: dict[str, Block] = {}
    stem: tuple[Op, ...] | None = None
    downsample: tuple[Op, ...] | None = None
    stages: tuple[Stage, ...] | None = None
    stages_span: Span | None = None
    head: tuple[Op, ...] | None = None
    taps: tuple[Word, ...] | None = None         # `taps stages.1, stages.2`: the maps a features build returns
    taps_span: Span | None = None
    init: Setting | None = None
    train: tuple[Setting, ...] | None = None
    train_span: Span | None = None
    sets: tuple[SetLine, ...] = ()
    lets: tuple[LetLine, ...] | None = None      # `let { }`: a space's named values
    lets_span: Span | None = None
    requires: tuple[Word, ...] | None = None     # `require { }`: its constraints, one expression each
    requires_span: Span | None = None
    comments: tuple[Comment, ...] = ()   # in file order; ignored by everything but the printer
