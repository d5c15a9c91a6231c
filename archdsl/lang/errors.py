"""User-facing errors: one root (`ArchError`), a code, a span and a hint, rendered rustc-style.

The source text of every parsed file is kept in `SOURCES` so an error can show the line it
points at long after parsing.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

SOURCES: dict[str, str] = {}

# C0 and C1 controls (ESC starts an ANSI sequence), DEL, and the Unicode line/paragraph
# separators, bidi overrides and isolates: none of them may reach a terminal raw.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def visible(text: str, keep_newlines: bool = True) -> str:
    """`text` with every control character shown as an escape (`\x1b`, `\u2028`), so user text
    (a spec line, a name, a path) can neither move the cursor nor recolour the terminal. Tabs
    stay; newlines stay unless `keep_newlines` is False."""
    def esc(m: re.Match) -> str:
        c = ord(m.group())
        return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"

    out = _CONTROL.sub(esc, text)
    return out if keep_newlines else out.replace("\n", "\\n")


@dataclass(frozen=True)
class Span:
    """A region of a source file, 1-based lines and columns, end exclusive."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{display_path(self.path)}:{self.line}:{self.column}"


def display_path(path: str) -> str:
    """A path as a user would type it: relative to the working directory when inside it
    (a shipped spec's absolute path prints as `specs/convnext_t.arch`)."""
    if not os.path.isabs(path):
        return path
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if rel.startswith("..") else rel


class ArchError(Exception):
    """Base of every error a user can cause. `.path`, `.line`, `.column` may be None
    for errors that are not about a place in a file (an unknown spec name, a bad --set)."""

    code = "E000"

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        if code:
            self.code = code

    @property
    def path(self) -> str | None:
        return self.span.path if self.span else None

    @property
    def line(self) -> int | None:
        return self.span.line if self.span else None

    @property
    def column(self) -> int | None:
        return self.span.column if self.span else None

    @property
    def errors(self) -> list["ArchError"]:
        return [self]

    def render(self) -> str:
        return render_error(self)

    def __str__(self) -> str:
        where = f"{self.span}: " if self.span else ""
        return f"{where}error[{self.code}]: {self.message}"


class SpecSyntaxError(ArchError):
    code = "E100"


class ResolveError(ArchError):
    code = "E200"


class OpError(ArchError):
    code = "E300"


class ShapeError(ArchError):
    code = "E400"


class OverrideError(ArchError):
    code = "E500"


class RecipeError(ArchError):
    code = "E600"


class WeightsError(ArchError):
    """A state dict that does not fit the model: names every missing, unexpected and
    mis-shaped key at once."""

    code = "E800"


class DataError(ArchError):
    """Training data that cannot be used: a missing or malformed directory, an unreadable image."""

    code = "E700"


class TrainError(ArchError):
    """A training run that cannot go on: a non-finite loss, a checkpoint that does not fit."""

    code = "E750"


class ResourceError(ArchError):
    """More than a limit allows: a spec past the documented size limits, a model or a run
    that would not fit in the memory there is."""

    code = "E900"


class ArchErrors(ArchError):
    """Several errors found in one pass, raised together."""

    def __init__(self, errors: list[ArchError]):
        assert errors, "ArchErrors needs at least one error"
        self._errors = list(errors)
        first = self._errors[0]
        more = len(self._errors) - 1
        message = first.message + (f" ... and {more} more" if more else "")
        super().__init__(message, first.span, first.hint, first.code)

    @property
    def errors(self) -> list[ArchError]:
        return self._errors

    def render(self) -> str:
        """Every error, up to RENDERED_ERRORS of them: a hostile line can hold tens of thousands
        of faults, and each rendering repeats its line (gigabytes on a terminal)."""
        shown = [render_error(e) for e in self._errors[:RENDERED_ERRORS]]
        rest = len(self._errors) - len(shown)
        if rest > 0:
            shown.append(f"... and {rest} more error{'s' if rest != 1 else ''} (the first "
                         f"{RENDERED_ERRORS} are shown; fix them and check again)")
        return "\n\n".join(shown)


@dataclass
class ErrorCollector:
    """Collects errors during a pass; `raise_if_any` raises them together."""

    errors: list[ArchError] = field(default_factory=list)

    def add(self, error: ArchError) -> None:
        self.errors.extend(error.errors)

    def raise_if_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise ArchErrors(self.errors)


def render_warning(message: str, span: Span | None, hint: str | None = None) -> str:
    """A warning as an error is rendered (`file:line:col: warning: ...`, the line, a caret)."""
    text = render_error(ArchError(message, span, hint=hint))
    where = f"{span}: " if span else ""
    return text.replace(f"{where}error[{ArchError.code}]: ", f"{where}warning: ", 1)


RENDERED_ERRORS = 50   # errors rendered in full; the rest are counted
LINE_WINDOW = 120      # characters of a long source line shown on each side of the caret


def render_error(error: ArchError) -> str:
    """`file:line:col: error[CODE]: message`, the source line, a caret, and a help line.
    Everything is plain text with control characters escaped (see `visible`). A line longer
    than the window is shown around the caret, cut with `...` (a 180 kB line once printed
    whole for every one of its faults)."""
    lines = [visible(str(error))]
    span = error.span
    text = SOURCES.get(span.path) if span else None
    if span and text is not None:
        raw = _source_line(text, span.line)
        if raw is not None:
            end = span.end_column - 1 if span.end_line == span.line else len(raw)
            start, stop = max(0, span.column - 1 - LINE_WINDOW), min(len(raw), max(end, span.column) + LINE_WINDOW)
            cut_left, cut_right = ("..." if start else ""), ("..." if stop < len(raw) else "")
            shown = lambda t: visible(t.expandtabs(4), keep_newlines=False)  # noqa: E731
            before = cut_left + shown(raw[start:span.column - 1])  # tabs and escapes widen the line
            width = len(cut_left + shown(raw[start:end])) - len(before)
            gutter = " " * len(str(span.line))
            lines.append(f" {span.line} | {cut_left}{shown(raw[start:stop])}{cut_right}")
            lines.append(f" {gutter} | {' ' * len(before)}{'^' * max(1, width)}")
    if error.hint:
        lines.append(f"help: {visible(error.hint)}")
    return "\n".join(lines)


def _source_line(text: str, number: int) -> str | None:
    """Line `number` (1-based) as the parser counts lines (at \\n only: str.splitlines also
    splits at \\f), found without splitting the whole text."""
    if number < 1:
        return None
    at = 0
    for _ in range(number - 1):
        at = text.find("\n", at) + 1
        if at == 0:
            return None
    stop = text.find("\n", at)
    return text[at:] if stop < 0 else text[at:stop]
