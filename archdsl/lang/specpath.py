"""Where specs are found: a path, a file beside the spec that names it, or a shipped spec by
name (`convnext_t`, `step05` for `roadmap/step05_*.arch`)."""
from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import ResolveError, Span
from .suggest import did_you_mean

# The shipped specs live in the repository's `specs/`; `archdsl/specs` is a link to it, so a
# wheel carries them inside the package. Resolved, the link gives back the repository's path.
_PACKAGED = Path(__file__).resolve().parents[1] / "specs"
SHIPPED = _PACKAGED.resolve() if _PACKAGED.is_dir() else Path(__file__).resolve().parents[2] / "specs"


def search_dirs() -> list[Path]:
    """ARCHDSL_SPEC_PATH (directories, separated like PATH; searched first, recursively), then
    the shipped specs. A name found in several is taken from the first."""
    extra = [Path(p) for p in os.environ.get("ARCHDSL_SPEC_PATH", "").split(os.pathsep) if p]
    return extra + [SHIPPED]


def shipped_names(spaces: bool = False) -> dict[str, Path]:
    """Every spec on the search path, by file stem: regular files only (a FIFO, a device or a
    dangling link named `x.arch` would hang or fail the read of every lookup). The design spaces
    under a `spaces/` folder (networks with open values, which compile only as points) come only
    with `spaces=True`."""
    names: dict[str, Path] = {}
    for d in reversed(search_dirs()):
        for f in sorted(d.rglob("*.arch")) if _is_dir(d) else []:
            if _is_file(f, None) and (spaces or "spaces" not in f.relative_to(d).parts[:-1]):
                names[f.stem] = f
    return names


def shipped_spaces() -> dict[str, Path]:
    """The shipped design spaces (specs/spaces/), by file stem."""
    return {k: v for k, v in shipped_names(spaces=True).items() if k not in shipped_names()}


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _is_file(path: Path, span: Span | None) -> bool:
    """Path.is_file, with an OSError it does not swallow (a name too long, a path not
    encodable) turned into a ResolveError naming the cause."""
    try:
        return path.is_file()
    except (OSError, ValueError) as e:
        cause = getattr(e, "strerror", None) or str(e)
        raise ResolveError(f"cannot use the spec path `{str(path)[:200]}`"
                           f"{'...' if len(str(path)) > 200 else ''}: {cause}", span,
                           hint="check the path", code="E201") from None


def looks_like_path(name: str) -> bool:
    return name.endswith(".arch") or os.sep in name or "/" in name


def find_spec(name: str, beside: Path | None = None, span: Span | None = None) -> Path:
    if looks_like_path(name):
        path = Path(name)
        if _is_file(path, span):
            return path
        raise ResolveError(f"no spec file `{name}`", span, hint="check the path", code="E201")
    if beside is not None and _is_file(beside / f"{name}.arch", span):
        return beside / f"{name}.arch"
    names = shipped_names(spaces=True)
    if name in names:
        return names[name]
    prefixed = [stem for stem in names if stem.startswith(name + "_")]
    if len(prefixed) == 1:
        return names[prefixed[0]]
    head = _family_head(prefixed, names)
    if head:
        return names[head]
    if prefixed:
        hint = "it matches " + ", ".join(f"`{p}`" for p in sorted(prefixed)) + "; use the full name"
    else:
        points = shipped_names()  # the listing names networks; a near miss may also be a space
        kin = sorted((s for s in points if _kind(s) == _kind(name)), key=natural)
        listing = (f"the {_kind(name)} specs that exist: " if kin else "specs that exist: ") + \
            ", ".join(kin or sorted(points, key=natural))
        hint = "; ".join(h for h in (did_you_mean(name, list(names)).rstrip("?"), listing) if h)
    raise ResolveError(f"unknown spec `{name}`", span, hint=hint, code="E201")


def natural(name: str) -> list:
    """Sort key putting `step08_k5` before `step08_k11`."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _kind(name: str) -> str:
    """The leading letters of a name: `step` for `step08_k5`, `convnext` for `convnext_t`."""
    m = re.match(r"[A-Za-z]+", name)
    return m.group(0).lower() if m else name


_HEADER = re.compile(r"^\s*network\s+(\w+)(?:\s+extends\s+(\w+))?", re.MULTILINE)


def _family_head(candidates: list[str], names: dict[str, Path]) -> str | None:
    """Of several specs sharing a prefix, the one that all the others extend: `step08` is
    `step08_kernel7`, whose variants `step08_k5`, `step08_k9` and `step08_k11` extend it."""
    parents = {}
    for stem in candidates:
        try:
            m = _HEADER.search(names[stem].read_text())
        except (OSError, UnicodeDecodeError):
            return None
        parents[stem] = m.group(2) if m else None
    heads = [h for h in candidates if all(parents[c] == h for c in candidates if c != h)]
    return heads[0] if len(heads) == 1 else None


_SIZE = re.compile(r"^(?:[tsbml]\d*|xl|atto|femto|pico|nano|tiny|small|base|large|b\d+|\d+x\d+d|\d+mf|\d+)$")


def family(path: Path) -> str:
    """The family a shipped spec belongs to, read off its name as timm's names read: its
    size and resolution words dropped from the end (`convnext_t` -> convnext, `convnext_b_384`
    -> convnext, `poolformer_s12` -> poolformer, `resnext50_32x4d` -> resnext), then the
    depth digits (`resnet50` -> resnet) unless they are a version (`convnextv2`, `mobilenet_v2`);
    the steps under `roadmap/` are the roadmap. (`archdsl list` gives a spec that extends
    another the family of the spec it extends.)"""
    if path.parent.name == "roadmap":
        return "roadmap"
    name = path.stem
    while True:
        head, _, last = name.rpartition("_")
        if not (head and _SIZE.match(last)):
            break
        name = head
    return re.sub(r"(?<=[a-z])\d+$", "", name) if not re.search(r"v\d+$", name) else name
