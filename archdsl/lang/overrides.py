"""Scalar overrides without editing a file: `--set key=value` on the CLI, keywords in the API.

    name=NAME                 classes=N               input=CxHxW (or a tuple)
    widths=96,192,384,768     depths=3,3,9,3          stages.I.width|depth|stride=N
    BLOCK.OP.kernel=K         e.g. convnext.dwconv.kernel=9 (BLOCK may be stem, downsample, head)
    train.FIELD=VALUE         any recipe field, e.g. train.epochs=5, train.betas=0.9,0.95
"""
from __future__ import annotations

import re

from . import ast
from .errors import ErrorCollector, OverrideError
from .limits import INT_RANGES
from .network import Network
from .recipe import EXAMPLES, FIELDS, TrainRecipe
from .suggest import did_you_mean

NETWORK_KEYS = ("name", "classes", "input", "widths", "depths")
_EXAMPLES = {"classes": "10", "input": "3x64x64", "widths": "96,192,384,768", "depths": "3,3,9,3"}


def parse_set(items: list[str]) -> dict[str, str]:
    """`["classes=10", "train.epochs=5"]` -> dict; a malformed item is an error."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise OverrideError(f"`--set {item}` is not KEY=VALUE", hint="for example `--set classes=10`",
                                code="E501")
        out[key.strip()] = value.strip()
    return out


def from_keywords(kwargs: dict[str, object]) -> dict[str, object]:
    """API keywords: `train_epochs=5` means `train.epochs`; dotted keys pass through."""
    out = {}
    for key, value in kwargs.items():
        if key.startswith("train_") and key[6:] in FIELDS:
            key = "train." + key[6:]
        out[key] = value
    return out


_KINDS = {"classes": "classes", "widths": "width", "depths": "depth", "width": "width", "depth": "depth",
          "stride": "stride", "kernel": "kernel"}


def _ints(value: object, key: str, kinds: tuple[str, ...] | str | None = None) -> tuple[int, ...]:
    """Whole numbers from `10`, `3x64x64`, `2,2,6,2` or a sequence, each within its kind's range."""
    if isinstance(value, str):
        items: list = value.replace("x", ",").split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    shown = value if isinstance(value, str) else ",".join(map(str, items))  # as typed, not `['0']`
    try:
        numbers = tuple(_whole(v) for v in items)
    except (TypeError, ValueError, OverflowError):
        raise OverrideError(f"`{key}` takes whole numbers, got `{shown}`",
                            hint=f"for example `--set {key}={_EXAMPLES.get(key, '3')}`", code="E502") from None
    if any(n < 1 for n in numbers):
        raise OverrideError(f"`{key}` values must be at least 1, got `{shown}`", code="E502")
    if kinds is not None:
        per = [kinds] * len(numbers) if isinstance(kinds, str) else list(kinds)
        for n, kind in zip(numbers, per):
            low, high = INT_RANGES[kind]
            if n > high:
                raise OverrideError(f"`{key}`: {n:,} is more than the most a {kind} may be ({high:,})",
                                    hint="the limits are listed in docs/guarantees.md", code="E502")
    return numbers


def _whole(v: object) -> int:
    """An int from an int or its text; not a bool, a float or anything else."""
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise TypeError(v)
    if isinstance(v, str) and not v.strip().isdigit():
        raise ValueError(v)
    return int(v)


def _one(value: object, key: str, kind: str) -> int:
    """A single whole number: `--set classes=10,20` is an error, not 10."""
    numbers = _ints(value, key, kind)
    if len(numbers) != 1:
        raise OverrideError(f"`{key}` takes one whole number, got {len(numbers)}: `{value}`",
                            hint=f"for example `--set {key}={_EXAMPLES.get(key, '3')}`", code="E502")
    return numbers[0]


def split_overrides(overrides: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
    """(recipe field values from the `train.*` keys, the network keys)."""
    train = {k: v for k, v in overrides.items() if k.startswith("train.")}
    rest = {k: v for k, v in overrides.items() if k not in train}
    return train_values(train), rest


def train_values(overrides: dict[str, object]) -> dict[str, object]:
    """`train.FIELD` overrides as recipe field values (pydantic validates them later)."""
    out: dict[str, object] = {}
    for key, value in overrides.items():
        field = key.removeprefix("train.")
        if field not in FIELDS:
            raise OverrideError(f"unknown recipe field `{field}` in `{key}`",
                                hint=did_you_mean(field, list(FIELDS)) or "fields: " + ", ".join(FIELDS),
                                code="E501")
        if isinstance(value, bool) and TrainRecipe.model_fields[field].annotation is not bool:
            raise OverrideError(f"`{key}` is not an on/off setting: it takes a value, not {value}",
                                hint=f"for example `{key}={EXAMPLES.get(field, '...')}`", code="E502")
        if isinstance(value, str) and "," in value:
            value = tuple(v.strip() for v in value.split(","))
        elif isinstance(value, str) and value.lower() in ("none", "off"):
            value = None if field in ("ema", "clip_grad", "randaugment") else 0
        out[field] = value
    return out


def apply_overrides(net: Network, overrides: dict[str, object]) -> Network:
    errors = ErrorCollector()
    update: dict[str, object] = {}
    stages = list(net.stages)
    blocks = dict(net.blocks)
    for key, value in overrides.items():
        try:
            if key == "name":
                if not isinstance(value, str) or not value.strip():
                    raise OverrideError(f"`name` takes a non-empty name, got `{value!r}`",
                                        hint="for example `--set name=my_net`", code="E502")
                update["name"] = value
            elif key == "classes":
                update["classes"] = _one(value, key, "classes")
            elif key == "input":
                dims = _ints(value, key)
                if len(dims) != 3:
                    raise OverrideError(f"`input` is CxHxW, got `{value}`", code="E502")
                update["input"] = _ints(value, key, ("channels", "size", "size"))
            elif key in ("widths", "depths"):
                numbers = _ints(value, key, _KINDS[key])
                if len(numbers) != len(stages):
                    raise OverrideError(f"`{key}` needs {len(stages)} values, one per stage, got {len(numbers)}",
                                        code="E502")
                field = key[:-1]
                stages = [s.model_copy(update={field: n}) for s, n in zip(stages, numbers)]
            elif m := re.fullmatch(r"stages\.(\d+)\.(width|depth|stride)", key):
                i = int(m.group(1))
                if i >= len(stages):
                    raise OverrideError(f"`{key}`: there are only {len(stages)} stages (0-based)", code="E501")
                stages[i] = stages[i].model_copy(update={m.group(2): _one(value, key, _KINDS[m.group(2)])})
            elif m := re.fullmatch(r"(\w+)\.(\w+?)\.kernel", key):
                kernel = _one(value, key, "kernel")
                section, op = m.groups()
                if section in ("stem", "downsample", "head"):
                    update[section] = _set_kernel(getattr(net, section) or (), op, kernel, key)
                elif section in blocks:
                    b = blocks[section]
                    blocks[section] = b.model_copy(update={"body": _set_kernel(b.body, op, kernel, key)})
                else:
                    raise OverrideError(f"`{key}`: no block or section `{section}`",
                                        hint=did_you_mean(section, list(blocks)) or None, code="E501")
            elif key == "taps":
                raise OverrideError("`taps` is a statement of its own, not a value to set",
                                    hint="restate it, `taps stages.1, stages.2`, to replace the taps a spec "
                                    "inherits; a build picks other maps with taps=[...] (`--taps`)", code="E501")
            else:
                raise OverrideError(f"unknown override `{key}`",
                                    hint=did_you_mean(key, list(NETWORK_KEYS)) or
                                    "keys: " + ", ".join(NETWORK_KEYS) + ", stages.I.width, BLOCK.OP.kernel, "
                                    "train.FIELD", code="E501")
        except OverrideError as e:
            errors.add(e)
    errors.raise_if_any()
    update["stages"] = tuple(stages)
    update["blocks"] = blocks
    return net.model_copy(update=update)


def _set_kernel(stmts: tuple, op: str, kernel: int, key: str) -> tuple:
    """Replace the kernel in every `OPk` word (e.g. dwconv7 -> dwconv9), recursing into residuals,
    gates, joins and `if`s."""
    found = False

    def visit(stmt):
        nonlocal found
        if isinstance(stmt, ast.Residual):
            body = tuple(visit(s) for s in stmt.body)
            shortcut = tuple(visit(s) for s in stmt.shortcut) if stmt.shortcut else stmt.shortcut
            return stmt.model_copy(update={"body": body, "shortcut": shortcut})
        if isinstance(stmt, (ast.Gate, ast.Guard, ast.Join)):
            return stmt.model_copy(update={"body": tuple(visit(s) for s in stmt.body)})
        if re.fullmatch(rf"{op}\d+", stmt.name.text):
            found = True
            return stmt.model_copy(update={"name": stmt.name.model_copy(update={"text": f"{op}{kernel}"})})
        return stmt

    out = tuple(visit(s) for s in stmts)
    if not found:
        raise OverrideError(f"`{key}`: no `{op}K` op there", code="E501")
    return out
