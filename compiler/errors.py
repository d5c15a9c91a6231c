"""Errors the compiler finds in a graph. Each carries the (opaque) span of the node at
fault; the language layer renders it against the source."""
from __future__ import annotations

from typing import Any, Callable


class CompileError(Exception):
    """`goes_on`: the shape the op gives all the same (a window that does not tile a map keeps
    it), so shape inference goes on past the error and meets every use of the op's line;
    `rehint`: the hint from the input shapes of all those uses (the windows that tile them
    all), written once they are known. Such an error is reported once per line."""

    def __init__(self, code: str, message: str, span: Any = None, hint: str | None = None, *,
                 goes_on: tuple | None = None, rehint: Callable[[list[tuple]], str] | None = None):
        super().__init__(message)
        self.code, self.message, self.span, self.hint = code, message, span, hint
        self.goes_on, self.rehint = goes_on, rehint


class CompileErrors(Exception):
    """All errors one pass found, raised together."""

    def __init__(self, errors: list[CompileError]):
        super().__init__(f"{len(errors)} error(s): " + "; ".join(e.message for e in errors))
        self.errors = errors
