"""The Python API: load, loads, build, analyze (load_weights lives in `weights`)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import compiler
from compiler import CompileErrors

from .lang.errors import ArchErrors, ShapeError
from .lang.network import Network
from .lang.overrides import apply_overrides, from_keywords, split_overrides
from .lang.parser import parse
from .lang.recipe import build_recipe
from .report import Report, report_from_ir
from .lang.resolve import read_spec, resolve
from .lang.specpath import find_spec
from .lang.to_ir import network_to_ir

if TYPE_CHECKING:
    import torch
    from torch import fx

SpecLike = Network | str | Path

_loads_counter = 0


def loads(text: str, path: str | None = None, **overrides) -> Network:
    """Resolve a spec given as text. `extends` looks beside `path` (if given) and in specs/."""
    global _loads_counter
    if path is None:
        _loads_counter += 1
        path = f"<string-{_loads_counter}>" if _loads_counter > 1 else "<string>"
    return resolve(parse(text, str(path)), from_keywords(overrides))


def load(name_or_path: str | Path, **overrides) -> Network:
    """A shipped spec by name (`convnext_t`, `step05`) or a path to a .arch file."""
    path = find_spec(str(name_or_path))
    return resolve(read_spec(path), from_keywords(overrides))


def as_network(spec: SpecLike, **overrides) -> Network:
    """A resolved Network from a Network, a shipped name or a path, with overrides applied."""
    if not isinstance(spec, Network):
        return load(spec, **overrides)
    if not overrides:
        return spec
    train, rest = split_overrides(from_keywords(overrides))
    net = spec.model_copy(update={"train": build_recipe(spec.train.model_dump() | train)}) if train else spec
    return apply_overrides(net, rest) if rest else net


def check(spec: SpecLike, **overrides) -> tuple[Network, compiler.IRGraph]:
    """Resolve and run every check pass; raises ArchError with everything found."""
    net = as_network(spec, **overrides)
    ir = network_to_ir(net)
    _run(compiler.check, ir)
    return net, ir


def analyze(spec: SpecLike, **overrides) -> Report:
    """Params, MACs and activation sizes per layer, per stage and in total, at the spec's input."""
    net, ir = check(spec, **overrides)
    return report_from_ir(net, ir)


def build(spec: SpecLike, *, device: str | torch.device | None = None, mode: str = "train",
          compile: bool | dict = False, state_dict: dict | None = None, **overrides) -> fx.GraphModule:
    """A torch.fx.GraphModule. `device="meta"` allocates nothing.

    mode="train" (default): trainable. mode="eval": inference only, in eval mode, with
    BatchNorm and layer scale folded into the weights and bias/activation/residual add fused
    into the matmul and conv kernels (state-dict names: see the README's "Inference build").
    compile=True: compiled in place with torch.compile (inductor; a dict passes torch.compile's
    arguments, e.g. {"backend": "aot_eager"}); the module, its paths and its state dict stay
    the same. Call an eval build under `torch.no_grad()`.
    state_dict: weights in the train build's naming (a trained model's `state_dict()`),
    loaded before the eval passes fold them."""
    if mode not in ("train", "eval"):
        raise ValueError(f"mode must be 'train' or 'eval', not {mode!r}")
    net = as_network(spec, **overrides)
    ir = network_to_ir(net)
    return _run(compiler.compile, ir, device=device, init=(net.init.scheme, net.init.arg), mode=mode,
                torch_compile=compile, state_dict=state_dict)


def _run(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except CompileErrors as e:
        errors = [ShapeError(c.message, c.span, c.hint, c.code) for c in e.errors]
        seen, unique = set(), []
        for err in errors:
            if (err.code, err.message, err.span) not in seen:
                seen.add((err.code, err.message, err.span))
                unique.append(err)
        raise (unique[0] if len(unique) == 1 else ArchErrors(unique)) from None
