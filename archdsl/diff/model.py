"""The schema of a semantic diff: what `archdsl diff --json` prints and reads back.

A diff is a list of `Change`s, each in one section of the network and named by where it
sits, plus the cost of both networks. Every model round-trips through JSON:
`DiffModel.model_validate_json(d.model_dump_json()) == d`.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Section = Literal["input", "classes", "stem", "stages", "blocks", "downsample", "head", "taps", "init", "train"]
SECTIONS: tuple[str, ...] = Section.__args__  # type: ignore[attr-defined]
Kind = Literal["added", "removed", "changed", "moved", "renamed"]


OP_SECTIONS = ("stem", "blocks", "downsample", "head")


class Change(BaseModel):
    """One difference. `what` names the thing: an op word (`dwconv`), a stage property
    (`depths`), a recipe field; `before`/`after` are its two values as written (None on the side where it is
    absent);
    `position` places an added, removed or moved op ("after `bn`", "ahead of `pwconv 4x`")."""

    model_config = ConfigDict(frozen=True)

    section: Section
    kind: Kind
    where: str
    what: str
    before: str | None = None
    after: str | None = None
    position: str | None = None
    details: tuple[str, ...] = ()

    def text(self) -> str:
        """The full line, without the section: "block `x`, residual branch: ..."."""
        where = f"{self.where}: " if self.where else ""
        pos = f" {self.position}" if self.position else ""
        extra = f" ({'; '.join(self.details)})" if self.details else ""
        if self.kind == "added":
            return f"{where}added `{self.after}`{pos}{extra}"
        if self.kind == "removed":
            return f"{where}removed `{self.before}`{pos}{extra}"
        if self.kind == "moved":
            return f"{where}`{self.after}` moved{pos}{extra}"
        if self.kind == "renamed":
            return f"{where}{self.what} `{self.before}` -> `{self.after}`{extra}"
        if self.section in OP_SECTIONS:
            return f"{where}`{self.before}` -> `{self.after}`{pos}{extra}"
        return f"{where}{self.what} {self.before} -> {self.after}{extra}"


class Cost(BaseModel):
    model_config = ConfigDict(frozen=True)

    params: int
    macs: int
    peak_activation: int  # elements of the largest single op output, per image


class SpecRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    path: str


class DiffModel(BaseModel):
    """`archdsl diff A B --json`."""

    model_config = ConfigDict(frozen=True)

    before: SpecRef
    after: SpecRef
    changes: tuple[Change, ...] = ()
    cost_before: Cost
    cost_after: Cost

    def section(self, name: str) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.section == name)
