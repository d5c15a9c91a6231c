"""Errors the compiler finds in a graph. Each carries the (opaque) span of the node at
fault; the language layer renders it against the source."""
from __future__ import annotations

from typing import Any


class CompileError(Exception):
    def __init__(self, code: str, message: str, span: Any = None, hint: str | None = None):
        super().__init__(message)
        self.code, self.message, self.span, self.hint = code, message, span, hint


class CompileErrors(Exception):
    """All errors one pass found, raised together."""

    def __init__(self, errors: list[CompileError]):
        super().__init__(f"{len(errors)} error(s): " + "; ".join(e.message for e in errors))
        self.errors = errors
