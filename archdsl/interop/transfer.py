"""Trained weights carried across an edit of the spec: `archdsl.transfer(src, dst, weights)`.

Ops are paired by the diff's alignment (`archdsl.diff.opdiff`: units aligned by their
leading op, moves found, changed ops paired by kind), not by module name or index: an op
that moved, was renamed, or sits at another position of its block keeps its weights. Each
block use (stage i, block j) is paired with the same use in the source; the stem, each
downsample layer and the head with theirs.

For each pair of ops, every tensor of the new op (weight, bias, running stats, layer-scale
gamma) takes the old op's tensor of the same name:
- the same shape: copied exactly;
- a kernel that grew or shrank: centre zero-padded or centre-cropped (with zero padding the
  grown conv computes the same function);
- changed channels: the overlapping slice is copied (`[:min(old, new)]` on each channel
  axis), the rest keeps the spec's init. This is not Net2Net's function-preserving widening;
- a 1x1 conv that became an `nn.Linear` (a layout change) or back: reshaped;
- made at another input size, channel count or class count (resize.py, as timm): a position
  embedding resampled bicubically to the new grid (class token kept), a Swin bias table
  resized to the new window (both listed as `resampled`), the conv reading the image adapted
  to its channels, and the layer giving the logits fresh for another number of classes (not
  a slice of the old one).
Ops of a different kind (bn -> ln), convs whose groups changed (dense -> depthwise), and
ops or blocks with no partner keep the spec's init. The report lists every tensor; an EMA's
`AveragedModel` state dict (a run's `ema.safetensors`) is unwrapped, and the report says so.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..api import SpecLike, as_network, build, check
from ..diff.compare import facts_of
from ..diff.opdiff import (GateView, OpView, ResidualView, SeqDiff, _branches, _gaps, _pair, _same_head, lcs,
                           same_op, units, views)
from ..lang.errors import WeightsError
from .resize import FRESH, fit, regridded, resampled, roles_of

if TYPE_CHECKING:
    import torch
    from torch import nn

_BLOCK = re.compile(r"stages\.(\d+)\.blocks\.(\d+)\.")


# ---------------------------------------------------------------- pairing ops
def align(a_items: list, b_items: list) -> list[tuple[OpView, OpView]]:
    """Pairs (old op, new op) of two op sequences, as the diff aligns them."""
    return [(x, y) for x, y, _ in align_moves(a_items, b_items)]


def align_moves(a_items: list, b_items: list, moved_in: bool = False) -> list[tuple[OpView, OpView, bool]]:
    """Pairs (old op, new op, moved) of two op sequences, as the diff aligns them; `moved`
    for the ops of a unit the diff reports as moved."""
    ba, bb = _branches(a_items), _branches(b_items)
    if ba and bb and len(ba) != len(bb):  # as the diff does: ops compared across the residual joins
        return align_moves([o for r in ba for o in r.body], [o for r in bb for o in r.body], moved_in)
    a, b = units(a_items), units(b_items)
    anchors = lcs(a, b, _same_head)
    moved = SeqDiff("")._moves(a, b, anchors, {i for i, _ in anchors}, {j for _, j in anchors})
    moved_units = {(i, j) for i, j, _ in moved}
    pairs = list(anchors) + [(i, j) for i, j, _ in moved]
    taken_a, taken_b = {i for i, _ in pairs}, {j for _, j in pairs}
    for gap_a, gap_b in _gaps(list(anchors), len(a), len(b)):
        gap_a = [i for i in gap_a if i not in taken_a]
        gap_b = [j for j in gap_b if j not in taken_b]
        pairs += [(i, j) for i, j, _ in _pair(gap_a, gap_b, a, b)]
    out: list[tuple[OpView, OpView, bool]] = []
    for i, j in pairs:
        u, v = a[i], b[j]
        moved = moved_in or (i, j) in moved_units
        if isinstance(u.head, ResidualView) and isinstance(v.head, ResidualView):
            out += align_moves(u.head.body, v.head.body, moved)
            out += align_moves(u.head.shortcut or [], v.head.shortcut or [], moved)
        elif isinstance(u.head, GateView) and isinstance(v.head, GateView):
            out += align_moves(u.head.body, v.head.body, moved)
        elif isinstance(u.head, OpView) and isinstance(v.head, OpView):
            out.append((u.head, v.head, moved))
        ta, tb = u.tail, v.tail
        tail_anchors = lcs(ta, tb, same_op)
        out += [(ta[x], tb[y], moved) for x, y in tail_anchors]
        for gap_a, gap_b in _gaps(tail_anchors, len(ta), len(tb)):
            out += [(ta[x], tb[y], moved) for x, y, _ in _pair(gap_a, gap_b, ta, tb)]
    return out


def _paths(ir) -> dict[tuple, str]:
    """(op span, place) -> module path, where place is ("block", i, j), ("down", i) or (section,)."""
    out = {}
    for _, d in ir.op_nodes():
        path = d["path"]
        m = _BLOCK.match(path)
        if m:
            place = ("block", int(m.group(1)), int(m.group(2)))
        elif path.startswith("downsample."):
            place = ("down", int(path.split(".")[1]))
        else:
            place = (path.split(".")[0],)
        out[(id_of(d["span"]), place)] = path
    return out


def id_of(span) -> tuple:
    return (span.path, span.line, span.column) if span is not None else (None,)


def op_map(src: SpecLike, dst: SpecLike) -> dict[str, str]:
    """New module path -> old module path, for every new op that has a partner."""
    a_net, b_net = as_network(src), as_network(dst)
    (_, a_ir), (_, b_ir) = check(a_net), check(b_net)
    fa, fb = facts_of(a_ir), facts_of(b_ir)
    pa, pb = _paths(a_ir), _paths(b_ir)
    out: dict[str, str] = {}

    def add(pairs, place_a, place_b) -> None:
        for x, y in pairs:
            old, new = pa.get((id_of(x.op.span), place_a)), pb.get((id_of(y.op.span), place_b))
            if old and new:
                out[new] = old

    for section in ("stem", "head"):
        add(align(views(getattr(a_net, section), fa), views(getattr(b_net, section), fb)), (section,), (section,))
    for i in range(1, min(len(a_net.stages), len(b_net.stages))):
        if a_net.downsample and b_net.downsample:
            add(align(views(a_net.downsample, fa, (i,)), views(b_net.downsample, fb, (i,))), ("down", i), ("down", i))
    for i in range(min(len(a_net.stages), len(b_net.stages))):
        sa, sb = a_net.stages[i], b_net.stages[i]
        pairs = align(views(a_net.blocks[sa.block].body, fa, (i,), {i: sa.values}),
                      views(b_net.blocks[sb.block].body, fb, (i,), {i: sb.values}))
        for j in range(min(sa.depth, sb.depth)):
            add(pairs, ("block", i, j), ("block", i, j))
    return out


# ---------------------------------------------------------------- moving tensors
@dataclass
class Entry:
    path: str             # the tensor in the new model
    source: str | None    # the tensor it came from
    how: str              # "exact", how it was adapted, or why it is fresh


OVERLAP = "overlap copied"  # in an adapted tensor's `how`: channels cut or padded to fit


@dataclass
class TransferReport:
    src: str
    dst: str
    exact: list[Entry] = field(default_factory=list)
    adapted: list[Entry] = field(default_factory=list)
    resampled: list[Entry] = field(default_factory=list)  # interpolated: position embeddings, bias tables
    fresh: list[Entry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # about the weights as a whole (an EMA unwrapped)

    @property
    def total(self) -> int:
        return len(self.exact) + len(self.adapted) + len(self.resampled) + len(self.fresh)

    @property
    def overlap_copied(self) -> list[Entry]:
        """The tensors whose channels changed: only their overlap carried over."""
        return [e for e in self.adapted if OVERLAP in e.how]

    def summary(self) -> str:
        resampled = f"{len(self.resampled)} resampled, " if self.resampled else ""
        return (f"transfer {self.src} -> {self.dst}: {self.total} tensors: {len(self.exact)} transferred exactly, "
                f"{len(self.adapted)} adapted, {resampled}{len(self.fresh)} freshly initialised")

    def __str__(self) -> str:
        lines = [self.summary(), *(f"  note: {n}" for n in self.notes)]
        moved = [e for e in self.exact if e.source != e.path]
        for title, entries, show_source in (("moved or renamed (exact)", moved, True),
                                            ("adapted (where channels differ, the overlap is copied and the rest "
                                             "keeps the spec's init)", self.adapted, True),
                                            ("resampled (interpolated onto the new grid or window, as timm does)",
                                             self.resampled, True),
                                            ("freshly initialised (the spec's init)", self.fresh, False)):
            if entries:
                lines.append(f"  {title}:")
                lines += [f"    {line}" for line in _grouped(entries, show_source)]
        return "\n".join(lines)


def _grouped(entries: list[Entry], show_source: bool) -> list[str]:
    """One line per tensor, with runs of blocks folded: `stages.2.blocks.9-26.dwconv.weight`."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    order = []
    for e in entries:
        m = re.search(r"blocks\.(\d+)\.", e.path)
        j = int(m.group(1)) if m else -1
        key = (re.sub(r"blocks\.\d+\.", "blocks.#.", e.path),
               re.sub(r"blocks\.\d+\.", "blocks.#.", e.source or "") if show_source else "", e.how)
        if key not in groups:
            order.append(key)
        groups[key].append(j)
    out = []
    for key in order:
        js = sorted(set(groups[key]))
        fold = str(js[0]) if len(js) == 1 else f"{js[0]}-{js[-1]}" if js == list(range(js[0], js[-1] + 1)) \
            else ",".join(map(str, js))
        path, source, how = (k.replace("#", fold) for k in key)
        out.append(f"{path}" + (f" <- {source}" if show_source and source != path else "") + f"  ({how})")
    return out


def _adapt(old: torch.Tensor, new: torch.Tensor) -> tuple[torch.Tensor | None, str]:
    """`old` made to fit `new`'s shape, and how; None where it cannot."""
    import torch.nn.functional as F

    how = []
    if old.dim() == 4 and new.dim() == 2 and old.shape[2:] == (1, 1):
        old, how = old[:, :, 0, 0], ["1x1 conv weight as linear"]
    elif old.dim() == 2 and new.dim() == 4 and new.shape[2:] == (1, 1):
        old, how = old[:, :, None, None], ["linear weight as 1x1 conv"]
    if old.dim() != new.dim():
        return None, f"shape {tuple(old.shape)} cannot become {tuple(new.shape)}"
    if old.dim() == 4 and old.shape[2:] != new.shape[2:]:
        ko, kn = old.shape[-1], new.shape[-1]
        if (ko - kn) % 2 or old.shape[-2] != ko or new.shape[-2] != kn:
            return None, f"kernel {tuple(old.shape[2:])} -> {tuple(new.shape[2:])} is not centred"
        if kn > ko:
            p = (kn - ko) // 2
            old = F.pad(old, (p, p, p, p))
            how.append(f"kernel {ko} -> {kn}: centre zero-padded")
        else:
            c = (ko - kn) // 2
            old = old[:, :, c:c + kn, c:c + kn]
            how.append(f"kernel {ko} -> {kn}: centre-cropped")
    if old.shape != new.shape:
        out = new.clone()
        region = tuple(slice(0, min(a, b)) for a, b in zip(old.shape, new.shape))
        out[region] = old[region]
        changed = [f"{a} -> {b}" for a, b in zip(old.shape[:2], new.shape[:2]) if a != b]
        how.append(f"channels {', '.join(changed)}: overlap copied")
        old = out
    return old.to(new.dtype), "; ".join(how)


def _compatible(old: nn.Module, new: nn.Module) -> str | None:
    """Why two paired modules cannot share weights, or None."""
    from torch import nn

    convlike = (nn.Conv2d, nn.Linear)
    if isinstance(old, convlike) and isinstance(new, convlike):
        g_old, g_new = getattr(old, "groups", 1), getattr(new, "groups", 1)
        if g_old != g_new and not (g_old == old.in_channels and g_new == new.in_channels):
            return f"groups {g_old} -> {g_new}"
        return None
    if type(old) is not type(new):
        return f"{type(old).__name__} -> {type(new).__name__}: a different op"
    return None


def transfer(src: SpecLike, dst: SpecLike, weights, *, into: nn.Module | None = None, quiet: bool = False,
             **overrides) -> tuple[nn.Module, TransferReport]:
    """Carry `weights` (a state dict, a model, or a .safetensors file) of network `src` into a
    model of network `dst`: `into` if given, else a new `archdsl.build(dst)` (the spec's init
    for whatever cannot transfer). `overrides` apply to both specs (`classes=10`). Prints the
    report unless `quiet`; returns (model, report)."""
    import torch

    from .weights import strip_averaged

    a_net, b_net = as_network(src, **overrides), as_network(dst, **overrides)
    state, ema = strip_averaged(_state_dict(weights))
    from torch import nn

    if into is not None and not isinstance(into, nn.Module):
        raise WeightsError(f"`into` takes the model to fill (an nn.Module), not {type(into).__name__}",
                           hint="leave it out to build a fresh model of `dst`")
    old_model = build(a_net, device="meta")
    model = into if into is not None else build(b_net)
    mapping = op_map(a_net, b_net)
    old_modules, new_modules = dict(old_model.named_modules()), dict(model.named_modules())
    report = TransferReport(a_net.name, b_net.name, notes=[ema] if ema else [])
    new_state = model.state_dict()  # shares the model's storage: copying into it sets the weights
    roles, source_roles = roles_of(model), roles_of(old_model)
    with torch.no_grad():
        for name, tensor in new_state.items():
            owner, leaf = _op_of(name, mapping)
            source_op = mapping.get(owner)
            if source_op is None:
                report.fresh.append(Entry(name, None, "no op in the source pairs with it"))
                continue
            source = f"{source_op}.{leaf}"
            why = _compatible(old_modules[source_op], new_modules[owner])
            if why is None and source not in state:
                why = "not in the source weights"
            if why is not None:
                report.fresh.append(Entry(name, source, why))
                continue
            old = state[source].to(tensor.device)
            if old.shape == tensor.shape and not regridded(roles, source_roles, name, source):
                tensor.copy_(old)
                report.exact.append(Entry(name, source, "exact"))
                continue
            special = fit(roles, name, source, old, tuple(tensor.shape), source_roles)
            if special is not None and isinstance(special[0], str) and special[0] == FRESH:
                report.fresh.append(Entry(name, source, special[1]))
                continue
            fitted, how = special if special is not None else _adapt(old, tensor)
            if fitted is None:
                report.fresh.append(Entry(name, source, how))
            else:
                tensor.copy_(fitted)
                (report.resampled if special is not None and resampled(name) else report.adapted).append(
                    Entry(name, source, how))
    if not quiet:
        print(report)
    return model, report


def _op_of(name: str, mapping: dict[str, str]) -> tuple[str, str]:
    """(the op's module path, the tensor's name inside it): an op's module may hold modules of
    its own (attention's `qkv`, `proj`), so the op is the longest paired prefix."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        owner = ".".join(parts[:cut])
        if owner in mapping:
            return owner, ".".join(parts[cut:])
    return name.rpartition(".")[0], parts[-1]


def _state_dict(weights) -> dict:
    """Weights as a state dict of real tensors: a model, a .safetensors file or a mapping.
    Anything else (None, a directory, a missing or foreign file, meta tensors) is a WeightsError."""
    import torch
    from torch import nn

    if isinstance(weights, nn.Module):
        state = weights.state_dict()
    elif isinstance(weights, (str, Path)):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = Path(weights)
        if not path.is_file():
            raise WeightsError(f"no weights file `{path}`" + (" (it is a directory)" if path.is_dir() else ""),
                               hint="pass a .safetensors file (a run's best.safetensors), a model or a state dict")
        try:
            state = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise WeightsError(f"cannot read `{path}` as safetensors: {str(e).splitlines()[0] if str(e) else e}",
                               hint="pass a .safetensors file, a model or a state dict") from None
    elif isinstance(weights, Mapping):
        state = dict(weights)
    else:
        raise WeightsError(f"cannot take weights from {type(weights).__name__}",
                           hint="pass a .safetensors path, an nn.Module or a state dict")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor) or v.is_meta]
    if bad:
        raise WeightsError(f"`{bad[0]}` holds no values (a meta tensor or not a tensor)"
                           + (f", and {len(bad) - 1} more" if len(bad) > 1 else ""),
                           hint="weights built with device=\"meta\" have no values to carry")
    if not state:
        raise WeightsError("the weights hold no tensors", hint="pass the weights of a trained model")
    return state
