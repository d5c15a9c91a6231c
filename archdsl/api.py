"""The Python API: load, loads, build, analyze (load_weights lives in `weights`)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import compiler
from compiler import CompileErrors

import os

from .lang.errors import ArchError, ArchErrors, ShapeError
from .lang.network import Network
from .lang.overrides import apply_overrides, from_keywords, split_overrides
from .lang.parser import parse
from .lang.recipe import build_recipe
from .report import FLOAT_BYTES, Report, report_from_ir, require_memory
from .lang.resolve import read_spec, resolve
from .lang.specpath import find_spec
from .lang.to_ir import network_to_ir

if TYPE_CHECKING:
    import torch
    from torch import fx

SpecLike = Network | str | Path

_loads_counter = 0


def _type_error(what: str, value, expected: str, example: str) -> ArchError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return ArchError(f"{what} takes {expected}, not {type(value).__name__} {shown}",
                     hint=f"for example {example}", code="E010")


def _spec_arg(spec, fn: str) -> None:
    if not isinstance(spec, (Network, str, os.PathLike)):
        raise _type_error(f"archdsl.{fn}", spec, "a spec: a shipped name, a .arch path or a Network",
                          f'archdsl.{fn}("convnext_t") or archdsl.{fn}(archdsl.load("specs/my.arch"))')


def as_device(device) -> "torch.device | None":
    """A device a tensor can be put on now, or an ArchError saying why not."""
    import torch

    if device is None:
        return None
    if not isinstance(device, (str, torch.device)):
        raise _type_error("`device`", device, "a str or torch.device", 'device="cpu" or device="meta"')
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError) as e:
        raise ArchError(f"unknown device `{device}`: {str(e).splitlines()[0]}",
                        hint='use "cpu", "meta", "cuda" or "cuda:N"', code="E011") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ArchError(f"device `{device}`: CUDA is not available on this machine",
                            hint='use device="cpu", or device="meta" to build without allocating',
                            code="E011")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ArchError(f"device `{device}`: there are only {torch.cuda.device_count()} CUDA devices",
                            hint="CUDA devices count from 0", code="E011")
    elif dev.type not in ("cpu", "meta") and not _backend_available(dev.type):
        raise ArchError(f"device `{device}` is not available on this machine",
                        hint='use "cpu", "meta" or "cuda"', code="E011")
    return dev


def _backend_available(kind: str) -> bool:
    import torch

    module = getattr(torch, kind, None)
    try:
        return bool(module is not None and module.is_available())
    except Exception:
        return False


def loads(text: str, path: str | None = None, **overrides) -> Network:
    """Resolve a spec given as text. `extends` looks beside `path` (if given) and in specs/."""
    global _loads_counter
    if not isinstance(text, str):
        raise _type_error("archdsl.loads", text, "the text of a spec (a str)",
                          'archdsl.loads("network n extends convnext_t\\nclasses 10\\n"); '
                          "for a file use archdsl.load(path)")
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise _type_error("archdsl.loads path=", path, "a str or Path", 'path="specs/my.arch"')
    if path is None:
        _loads_counter += 1
        path = f"<string-{_loads_counter}>" if _loads_counter > 1 else "<string>"
    return resolve(parse(text, str(path)), from_keywords(overrides))


def load(name_or_path: str | Path, **overrides) -> Network:
    """A shipped spec by name (`convnext_t`, `step05`) or a path to a .arch file."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise _type_error("archdsl.load", name_or_path, "a shipped name or a .arch path (str or Path)",
                          'archdsl.load("convnext_t"); for spec text use archdsl.loads(text)')
    path = find_spec(os.fspath(name_or_path))
    return resolve(read_spec(path), from_keywords(overrides))


def as_network(spec: SpecLike, **overrides) -> Network:
    """A resolved Network from a Network, a shipped name or a path, with overrides applied."""
    _spec_arg(spec, "as_network")
    if not isinstance(spec, Network):
        return load(spec, **overrides)
    if not overrides:
        return spec
    train, rest = split_overrides(from_keywords(overrides))
    net = spec.model_copy(update={"train": build_recipe(spec.train.model_dump() | train)}) if train else spec
    return apply_overrides(net, rest) if rest else net


def check(spec: SpecLike, **overrides) -> tuple[Network, compiler.IRGraph]:
    """Resolve and run every check pass; raises ArchError with everything found."""
    _spec_arg(spec, "check")
    net = as_network(spec, **overrides)
    ir = network_to_ir(net)
    _run(compiler.check, ir)
    return net, ir


def analyze(spec: SpecLike, **overrides) -> Report:
    """Params, MACs and activation sizes per layer, per stage and in total, at the spec's input."""
    _spec_arg(spec, "analyze")
    net, ir = check(spec, **overrides)
    return report_from_ir(net, ir)


def build(spec: SpecLike, *, device: str | torch.device | None = None, mode: str = "train",
          compile: bool | dict = False, state_dict: dict | None = None, check_memory: bool = True,
          **overrides) -> fx.GraphModule:
    """A torch.fx.GraphModule. `device="meta"` allocates nothing.

    mode="train" (default): trainable. mode="eval": inference only, in eval mode, with
    BatchNorm and layer scale folded into the weights and bias/activation/residual add fused
    into the matmul and conv kernels (state-dict names: see docs/speed.md, "Inference build").
    compile=True: compiled in place with torch.compile (inductor; a dict passes torch.compile's
    arguments, e.g. {"backend": "aot_eager"}); the module, its paths and its state dict stay
    the same. Call an eval build under `torch.no_grad()`.
    state_dict: weights in the train build's naming (a trained model's `state_dict()`),
    loaded before the eval passes fold them.

    Before allocating, the weights' size is compared with the memory `device` has available
    (MemAvailable on the CPU); a model that cannot fit is a ResourceError (E901) instead of
    an allocator crash. `check_memory=False` skips that."""
    _spec_arg(spec, "build")
    if mode not in ("train", "eval"):
        raise _type_error("archdsl.build's `mode`", mode, '"train" or "eval"', 'archdsl.build("resnet50", mode="eval")')
    if not isinstance(compile, (bool, dict)):
        raise _type_error("archdsl.build's `compile`", compile, "True, False or torch.compile's arguments as a dict",
                          'archdsl.build("convnext_t", compile=True)')
    dev = as_device(device)
    net = as_network(spec, **overrides)
    ir = network_to_ir(net)
    if check_memory and (dev is None or dev.type != "meta"):
        import torch

        _run(compiler.check, ir)
        weights = report_from_ir(net, ir).params * FLOAT_BYTES
        where = dev if dev is not None else torch.get_default_device()
        require_memory(weights, where, f"the weights of {net.name}",
                       'build it with device="meta" to inspect it without allocating, shrink it '
                       "(--set widths=..., depths=...), or pass check_memory=False", span=net.spans.get("stages"))
    return _run(compiler.compile, ir, device=dev, init=(net.init.scheme, net.init.arg), mode=mode,
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
