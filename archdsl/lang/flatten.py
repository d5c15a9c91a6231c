"""Network -> one self-contained SpecFile (what `archdsl flatten` prints): no `extends`, every
block, every section, the `set` lines and overrides already applied, the recipe written out.

    flat = flatten(load("convnext_s"))
    format_spec(flat, layout=False)       # resolves to the same network, with no parent
"""
from __future__ import annotations

import re

from . import ast
from .errors import OverrideError, Span
from .network import Network
from .recipe import LINE_FIELDS, TrainRecipe

_NOWHERE = Span("<flatten>", 1, 1, 1, 1)


def w(text: str, span: Span = _NOWHERE) -> ast.Word:
    return ast.Word(text=text, span=span)


def num(value) -> str:
    """A number as the language writes it: `300`, `0.004`, `1e-06`."""
    if isinstance(value, bool):
        raise TypeError("a flag is not a number")
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value)) if value != 0 else "0"
    return repr(value)


def stage(width: int, block: str, depth: int, stride: int = 1, values: dict | None = None) -> ast.Stage:
    """A stage line: `24 inverted x2 s2 t=6` (`values`: the per-stage values the block reads)."""
    args = [w(f"s{stride}")] if stride != 1 else []
    args += [w(f"{k}={num(v)}") for k, v in (values or {}).items()]
    return ast.Stage(width=w(str(width)), block=w(block), depth=w(f"x{depth}"), args=tuple(args), span=_NOWHERE)


def setting(key: str, *groups: tuple[str, ...]) -> ast.Setting:
    return ast.Setting(key=w(key), groups=tuple(tuple(w(t) for t in g) for g in groups if g), span=_NOWHERE)


def recipe_settings(recipe: TrainRecipe) -> tuple[ast.Setting, ...]:
    """The `train { }` lines that set `recipe`: every field that differs from the default."""
    r, d = recipe, TrainRecipe()
    out = []
    changed = {k for k in TrainRecipe.model_fields if getattr(r, k) != getattr(d, k)}
    for key in ("epochs", "batch"):
        if key in changed:
            out.append(setting(key, (num(getattr(r, key)),)))
    opt_fields = ("optimizer", "lr", "wd", "momentum", "betas", "nesterov")
    if changed & set(opt_fields):
        words = [r.optimizer]
        for k in opt_fields[1:]:
            if k in changed:
                value = getattr(r, k)
                words += [k] if k == "nesterov" else [k, *map(num, value)] if k == "betas" else [k, num(value)]
        out.append(setting("optimizer", tuple(words)))
    sched_fields = ("schedule", "milestones", "every", "warmup", "min_lr", "gamma")
    if changed & set(sched_fields):
        words = [r.schedule] + ([str(m) for m in r.milestones] if r.schedule == "step" else [])
        for k in ("every", "warmup", "min_lr", "gamma"):
            if k in changed:
                words += [k, num(getattr(r, k))]
        out.append(setting("schedule", tuple(words)))
    if changed & {"layer_decay", "layer_group"}:
        out.append(setting("layer_decay", (num(r.layer_decay),
                                           *(("group", num(r.layer_group)) if "layer_group" in changed else ()))))
    augments = []
    for k in ("rrc", "flip", "randaugment", "color_jitter", "mixup", "cutmix", "erasing"):
        if k in changed or k == "erasing" and "erasing_mode" in changed:
            value = getattr(r, k)
            if isinstance(value, bool):
                if value:
                    augments.append((k,))
            elif isinstance(value, tuple):
                augments.append((k, *map(num, value)))
            elif isinstance(value, str):
                augments.append((k, value))
            elif value is not None:
                augments.append((k, num(value)) + ((r.erasing_mode,) if k == "erasing" and "erasing_mode" in changed
                                                   else ()))
    if augments:
        out.append(setting("augment", *augments))
    if changed & {"normalize", "mean", "std"}:
        out.append(setting("normalize", (r.normalize,) if r.normalize != "explicit" else
                           ("mean", *map(num, r.mean or ()), "std", *map(num, r.std or ()))))
    for k in LINE_FIELDS:
        if k in changed:
            value = getattr(r, k)
            if isinstance(value, bool):
                if value:
                    out.append(setting(k))
            elif value is None:
                out.append(setting(k, ("off",)))
            elif isinstance(value, tuple):
                out.append(setting(k, value))
            else:
                out.append(setting(k, (value if isinstance(value, str) else num(value),)))
    return tuple(out)


NETWORK_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # the grammar's NAME


def point_header(values: dict) -> tuple[ast.Comment, ...]:
    """Where a point of a space came from, as the comments a flattened point starts with:
    `# point of space 1a2b3c4d5e6f7a8b` and `# values: k=7 w=32`."""
    if not values:
        return ()
    from .expr import show

    rest = " ".join(f"{k}={show(v)}" for k, v in values.items() if k != "space")
    return (ast.Comment(text=f"# point of space {values.get('space')}", span=_NOWHERE),
            ast.Comment(text=f"# values: {rest}", span=_NOWHERE))


def flatten(net: Network, name: str | None = None) -> ast.SpecFile:
    """`net` as one file that extends nothing, with the blocks its stages run (a block a parent
    defined that no stage uses any more is left out). A name the grammar cannot read back (one
    set with `--set name=`) is refused rather than written into a spec that does not parse."""
    if not NETWORK_NAME.fullmatch(name or net.name):
        raise OverrideError(f"{name or net.name!r} cannot be written as a spec's network name "
                            "(letters, digits and `_`)", hint="for example `--set name=my_net`", code="E502")
    init = None
    if net.init.scheme != "default" or net.init.span is not None:
        init = setting(net.init.scheme, (net.init.arg,) if net.init.arg else ())
    train = recipe_settings(net.train)
    return ast.SpecFile(comments=point_header(net.values),
        path="<flatten>", name=w(name or net.name), input=w("x".join(map(str, net.input))),
        classes=w(str(net.classes)), stem=net.stem or None,
        blocks={k: b for k, b in net.blocks.items() if k in {s.block for s in net.stages}},
        downsample=net.downsample or None,
        stages=tuple(stage(s.width, s.block, s.depth, s.stride, s.values) for s in net.stages),
        head=net.head or None, taps=tuple(w(t.text) for t in net.taps) or None, init=init, train=train or None)
