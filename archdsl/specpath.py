"""Where specs are found: a path, a file beside the spec that names it, or a shipped spec by
name (`convnext_t`, `step05` for `roadmap/step05_*.arch`)."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import ResolveError, Span
from .suggest import did_you_mean

SHIPPED = Path(__file__).resolve().parent.parent / "specs"


def search_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("ARCHDSL_SPEC_PATH", "").split(os.pathsep) if p]
    return extra + [SHIPPED]


def shipped_names() -> dict[str, Path]:
    """Every spec on the search path, by file stem."""
    names: dict[str, Path] = {}
    for d in reversed(search_dirs()):
        for f in sorted(d.rglob("*.arch")) if d.is_dir() else []:
            names[f.stem] = f
    return names


def looks_like_path(name: str) -> bool:
    return name.endswith(".arch") or os.sep in name or "/" in name


def find_spec(name: str, beside: Path | None = None, span: Span | None = None) -> Path:
    if looks_like_path(name):
        path = Path(name)
        if path.is_file():
            return path
        raise ResolveError(f"no spec file `{name}`", span, hint="check the path", code="E201")
    if beside is not None and (beside / f"{name}.arch").is_file():
        return beside / f"{name}.arch"
    names = shipped_names()
    if name in names:
        return names[name]
    prefixed = [stem for stem in names if stem.startswith(name + "_")]
    if len(prefixed) == 1:
        return names[prefixed[0]]
    if prefixed:
        hint = "it matches " + ", ".join(f"`{p}`" for p in sorted(prefixed)) + "; use the full name"
    else:
        hint = did_you_mean(name, list(names)) or ("specs that exist: " + ", ".join(sorted(names)))
    raise ResolveError(f"unknown spec `{name}`", span, hint=hint, code="E201")
