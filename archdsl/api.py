"""The Python API: load, loads, build, analyze (load_weights lives in `weights`)."""
from __future__ import annotations

from pathlib import Path
from collections.abc import Mapping
from typing import TYPE_CHECKING

import compiler
from compiler import CompileErrors

import os

from .lang.errors import ArchError, ArchErrors, ShapeError, WeightsError, display_path
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


def check(spec: SpecLike, *, features: bool = False, out_indices=None, taps=None,
          **overrides) -> tuple[Network, compiler.IRGraph]:
    """Resolve and run every check pass; raises ArchError with everything found (a spec's
    `taps` included). With `features`/`out_indices`/`taps` (see `build`) the IR returns those
    maps; its `ir.feature_info` says what each is. Without them a spec's declared taps are in
    `ir.declared_taps`, in the same form."""
    _spec_arg(spec, "check")
    net = as_network(spec, **overrides)
    ir = network_to_ir(net)
    _run(compiler.check, ir)
    _select_taps(net, ir, features, out_indices, taps)
    return net, ir


def analyze(spec: SpecLike, *, features: bool = False, out_indices=None, taps=None, **overrides) -> Report:
    """Params, MACs and activation sizes per layer, per stage and in total, at the spec's input.
    A features build's report counts what it computes (no head) and lists its taps; any other
    report lists the taps the spec declares (`taps_returned` False: the build returns logits)."""
    _spec_arg(spec, "analyze")
    net, ir = check(spec, features=features, out_indices=out_indices, taps=taps, **overrides)
    report = report_from_ir(net, ir)
    report.taps_returned = hasattr(ir, "feature_info")
    report.taps = list(getattr(ir, "feature_info", None) or getattr(ir, "declared_taps", []))
    return report


def _select_taps(net: Network, ir: compiler.IRGraph, features: bool, out_indices, taps) -> None:
    """A features build (`features=True`: the maps the spec's `taps` declare, else those at the
    end of each stage; `out_indices` of them; or the named `taps`) or a full build that also
    returns `taps`: compiler/passes/taps.py. A spec's declared taps are checked whatever is
    built (a tap that names nothing is E413 at the tap)."""
    from compiler.passes import taps as tapping

    if not isinstance(features, bool):
        raise _type_error("`features`", features, "True or False", 'archdsl.build("convnext_t", features=True)')
    if taps is not None and (isinstance(taps, str) or not all(isinstance(t, str) for t in _items(taps))):
        raise _type_error("`taps`", taps, "a list of names", 'taps=["stages.1", "stages.2.blocks.5"]')
    if out_indices is not None and (isinstance(out_indices, (str, bytes)) or
                                    not all(type(i) is int for i in _items(out_indices))):
        raise _type_error("`out_indices`", out_indices, "a list of stage indices", "out_indices=(1, 2, 3)")
    declared = _declared_taps(net, ir)
    where = net.spans.get("taps") if declared else net.spans.get("stages")
    if out_indices is not None and (taps is not None or not features):
        raise ArchError("`out_indices` picks among the " + ("declared taps" if declared else "stages' maps") +
                        " of a features build" +
                        (", and `taps` names them: give one of the two" if taps is not None else ""),
                        span=where, code="E411",
                        hint='archdsl.build(spec, features=True, out_indices=(1, 2, 3)), or name any map '
                             'with taps=["stages.1", ...]')
    if not features and taps is None:
        if declared:
            ir.declared_taps = tapping.FeatureInfo(t.as_dict() for t in declared)
        return
    if taps is None:
        names = [t.name for t in declared] or tapping.stage_names(ir)
        picked = list(range(len(names))) if out_indices is None else list(out_indices)
        bad = [i for i in picked if not -len(names) <= i < len(names)]
        if bad or not picked:
            what = (f"declares {len(names)} taps" if declared else f"has {len(names)} " +
                    ("stages" if len(names) == len(net.stages) else "blocks") + " to tap")
            raise ShapeError(f"out_indices {tuple(picked)}: " + (f"{bad[0]} is out of range" if bad else "empty") +
                             f"; {net.name} {what}, indices 0..{len(names) - 1} (or -{len(names)}..-1)",
                             where, code="E411", hint="the maps: " + ", ".join(
                                 f"{i}: `{n}`" for i, n in enumerate(names) if i < 6 or i == len(names) - 1))
        seen: dict[int, int] = {}  # map -> the index that picked it first
        again = None
        for i in picked:
            if i % len(names) in seen:
                again = i
                break
            seen[i % len(names)] = i
        if again is not None:
            first = seen[again % len(names)]
            same = "" if first == again else f" ({first} and {again} are both `{names[again]}`)"
            raise ShapeError(f"out_indices {tuple(picked)} repeats {again}{same}", where, code="E411",
                             hint=f"give each index once (indices 0..{len(names) - 1}, or -{len(names)}..-1 from "
                                  "the end): " + ", ".join(f"{i}: `{n}`" for i, n in enumerate(names)
                                                           if i < 6 or i == len(names) - 1))
        spans = [net.taps[i].span for i in picked] if declared else None  # errors at the spec's own taps
        taps = [names[i] for i in picked]
    else:
        spans = None
    try:
        found = _run(tapping.resolve, ir, list(taps), features, spans)
    except ArchError as e:  # a name that is not in the spec: point at its stages (or its taps)
        for err in e.errors:
            err.span = err.span or where
        e.span = e.span or where
        raise
    _run(tapping.select_taps, ir, found, not features)
    ir.feature_info = tapping.FeatureInfo(t.as_dict() for t in found)


def _declared_taps(net: Network, ir: compiler.IRGraph) -> list:
    """The spec's `taps`, checked against the network: E413 at a tap that names nothing (or one
    named twice), saying where the taps were stated when the spec inherits them."""
    from compiler.passes import taps as tapping

    if not net.taps:
        return []
    try:
        return _run(tapping.resolve, ir, [w.text for w in net.taps], False, [w.span for w in net.taps], "E413")
    except ArchError as e:
        stated = net.spans.get("taps")
        if stated is not None and stated.path != net.path:
            for err in e.errors:
                err.hint = (err.hint or "") + (f"; {net.name} inherits these taps from {display_path(stated.path)}: "
                                               f"restate `taps` in {net.name} to replace them")
        raise


def _items(value):
    try:
        return list(value)
    except TypeError:
        return [value]


def build(spec: SpecLike, *, device: str | torch.device | None = None, mode: str = "train",
          compile: bool | dict = False, state_dict: dict | None = None, check_memory: bool = True,
          features: bool = False, out_indices=None, taps=None, **overrides) -> fx.GraphModule:
    """A torch.fx.GraphModule. `device="meta"` allocates nothing.

    mode="train" (default): trainable. mode="eval": inference only, in eval mode, with
    BatchNorm and layer scale folded into the weights and bias/activation/residual add fused
    into the matmul and conv kernels (state-dict names: see docs/speed.md, "Inference build").
    compile=True: compiled in place with torch.compile (inductor; a dict passes torch.compile's
    arguments, e.g. {"backend": "aot_eager"}); the module, its paths and its state dict stay
    the same. Call an eval build under `torch.no_grad()`.
    state_dict: weights in the train build's naming (a trained model's `state_dict()`, or an
    EMA's `AveragedModel` state dict, unwrapped), loaded strictly before the eval passes fold
    them: they must fit this build's shapes (input, channels, classes). A features build
    leaves out the tensors of what it cuts (the head). Weights made at another size or in
    another layout: build without them and `load_weights(model, sd)`, which fits them.

    Before allocating, the weights' size is compared with the memory `device` has available
    (MemAvailable on the CPU); a model that cannot fit is a ResourceError (E901) instead of
    an allocator crash. `check_memory=False` skips that.

    features=True: a backbone. Its forward returns a list of NCHW maps: those the spec's `taps`
    statement declares, in its order, or, where it declares none, the end of every stage (of
    every block where the network has one stage: ViT, isotropic ConvNeXt); `out_indices` picks
    among them (negative counts from the end); the head and anything after the last map are
    not built. Tokens come back as their map, a class token dropped.
    taps=[names]: the maps named (`stem`, `stages.I`, `stages.I.blocks.J`, `downsample.I`,
    or any op's module path); with features=False the forward returns `(output, [taps])`, the
    named values as they are where they are no map (`head` included). A features build
    returns maps only: a tap that is none (`head`, a tap after pooling) is E412. `taps`
    replaces the spec's own for this build.
    Either way `model.feature_info` lists module, num_chs, reduction and shape per map
    (docs/backbones.md); a features build's `model.cut_modules` names the op modules it cut
    (load_weights leaves a classifier checkpoint's tensors of them out)."""
    _spec_arg(spec, "build")
    if mode not in ("train", "eval"):
        raise _type_error("archdsl.build's `mode`", mode, '"train" or "eval"', 'archdsl.build("resnet50", mode="eval")')
    if not isinstance(compile, (bool, dict)):
        raise _type_error("archdsl.build's `compile`", compile, "True, False or torch.compile's arguments as a dict",
                          'archdsl.build("convnext_t", compile=True)')
    if state_dict is not None:
        state_dict = _tensors(state_dict)
    if isinstance(compile, dict):
        _check_backend(compile)
    dev = as_device(device)
    net = as_network(spec, **overrides)
    ir = network_to_ir(net)
    cut: set[str] = set()
    if features or taps is not None or out_indices is not None or net.taps:
        _run(compiler.check, ir)
        paths = {d["path"] for _, d in ir.op_nodes()}
        _select_taps(net, ir, features, out_indices, taps)
        cut = paths - {d["path"] for _, d in ir.op_nodes()}
        if state_dict is not None and cut:  # the full network's weights: those of what was cut are left out
            from compiler.sections import within

            state_dict = {k: v for k, v in state_dict.items() if not within(k, cut)}
    if check_memory and (dev is None or dev.type != "meta"):
        import torch

        _run(compiler.check, ir)
        weights = report_from_ir(net, ir).params * FLOAT_BYTES
        where = dev if dev is not None else torch.get_default_device()
        require_memory(weights, where, f"the weights of {net.name}",
                       'build it with device="meta" to inspect it without allocating, shrink it '
                       "(--set widths=..., depths=...), or pass check_memory=False", span=net.spans.get("stages"))
    try:
        model = _run(compiler.compile, ir, device=dev, init=(net.init.scheme, net.init.arg), mode=mode,
                     torch_compile=compile, state_dict=state_dict)
    except RuntimeError as e:
        if state_dict is None or "state_dict" not in str(e):
            raise
        lines = [ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()]
        raise WeightsError(f"the state dict does not fit {net.name}: " + "; ".join(lines)[:400],
                           hint="pass the state_dict() of a model built from this spec at this input and "
                                "classes; weights made at another input size, channel or class count, or in "
                                "another layout, load with archdsl.load_weights(model, sd, layout=...), which "
                                "fits them as timm does") from None
    if hasattr(ir, "feature_info"):
        model.feature_info = ir.feature_info
    if cut:  # what a features build does not compute: load_weights leaves a checkpoint's tensors of it out
        model.cut_modules = tuple(sorted(cut))
    return model


def _tensors(state_dict) -> dict:
    """A state dict: a mapping of names to tensors (a path or anything else is a clear E010)."""
    import torch

    if isinstance(state_dict, (str, os.PathLike)):
        raise _type_error("archdsl.build's `state_dict`", state_dict, "a dict of tensors, not a file",
                          'archdsl.build("convnext_t", state_dict=safetensors.torch.load_file("w.safetensors"))')
    if not isinstance(state_dict, Mapping) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()):
        raise _type_error("archdsl.build's `state_dict`", state_dict, "a dict of names to tensors",
                          'archdsl.build("convnext_t", state_dict=model.state_dict())')
    return dict(state_dict)


def _check_backend(options: dict) -> None:
    """torch.compile's backend is looked up when the model first runs; name a bad one now."""
    backend = options.get("backend", "inductor")
    if isinstance(backend, str):
        from torch._dynamo import list_backends

        known = set(list_backends(exclude_tags=())) | {"inductor"}
        if backend not in known:
            raise ArchError(f"archdsl.build's `compile`: unknown torch.compile backend `{backend}`",
                            hint="backends here: " + ", ".join(sorted(known)), code="E010")


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
