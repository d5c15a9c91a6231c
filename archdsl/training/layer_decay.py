"""Layer-wise learning-rate decay (the recipe's `layer_decay D [group G]`): which layer each
parameter sits in, and the factor on its learning rate.

The official ConvNeXt fine-tuning (optim_factory.py `get_num_layer_for_convnext`, adapted from
BEiT; main.py's assigner) runs only on ConvNeXt-S/B/L/XL, depths 3, 3, 27, 3: 12 layers of
three consecutive blocks, a stage's downsample in its first layer, the stem layer 0, the final
norm and head layer 13, and layer i's lr scaled by D ** (13 - i). archdsl reads the same off
any network's module paths (as compiler/passes/taps.py reads its sections):

    stem                      layer 0
    stages.I.blocks.J         layer first(I) + J // G: each stage's blocks cut into layers of
                              G consecutive blocks (the last may be shorter), never across
                              stages, numbered on from the stage before
    downsample.I              layer first(I): it joins the first layer of the stage it leads
    head                      layer L + 1 (scale 1), L the number of block layers

scale(layer) = D ** (L + 1 - layer). G = 3 is the official rule, exactly, for 3, 3, 27, 3
(and 12 layers); G = 1 is BEiT's per-block decay for one-stage ViTs (blocks.J at J + 1).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from torch import nn

from ..lang.errors import TrainError

_PLACE = re.compile(r"(?:(stem)|(head)|downsample\.(\d+)|stages\.(\d+)\.blocks\.(\d+))(?:\.|$)")
_BLOCK = re.compile(r"stages\.(\d+)\.blocks\.(\d+)")


@dataclass(frozen=True)
class Layers:
    """The layer of every parameter, and what each layer holds (for the run's report)."""

    of: dict[str, int]   # parameter name -> layer, 0 (stem) .. L + 1 (head)
    labels: list[str]    # per layer: "stem", "stages.0", "stages.2.blocks.3-5", ..., "head"

    def scales(self, decay: float) -> list[float]:
        """D ** (L + 1 - i) for i in 0 .. L + 1, as main.py's `LayerDecayValueAssigner` values."""
        top = len(self.labels) - 1
        try:
            out = [decay ** (top - i) for i in range(top + 1)]
        except OverflowError:
            out = [math.inf]
        if not all(math.isfinite(s) for s in out):
            raise TrainError(f"layer_decay {decay:g} over {top + 1} layers overflows the stem's lr scale",
                             hint="use a factor of at most 1 (the official ConvNeXt uses 0.7 or 0.8)",
                             code="E761")
        return out


def assign_layers(model: nn.Module, group: int) -> Layers:
    """Each parameter's layer, by the rule in the module docstring; a TrainError when a
    parameter sits outside the stem, the downsample layers, the stages' blocks and the head."""
    depths: dict[int, int] = {}
    for path, _ in model.named_modules():
        m = _BLOCK.fullmatch(path)
        if m:
            depths[int(m[1])] = max(depths.get(int(m[1]), 0), int(m[2]) + 1)
    if not depths:
        raise TrainError("layer_decay needs stages of blocks to count layers over, and this model has none "
                         "(no `stages.I.blocks.J` modules)",
                         hint="train an archdsl network (stem, stages, head), or leave layer_decay at 1",
                         code="E761")
    first, labels = {}, ["stem"]
    for stage in sorted(depths):
        first[stage] = len(labels)
        depth = depths[stage]
        for start in range(0, depth, group):
            end = min(start + group, depth) - 1
            labels.append(f"stages.{stage}" if group >= depth else
                          f"stages.{stage}.blocks.{start}" + (f"-{end}" if end > start else ""))
    head = len(labels)
    labels.append("head")
    of: dict[str, int] = {}
    for name, _ in model.named_parameters():
        m = _PLACE.match(name)
        stem, is_head, down, stage, block = m.groups() if m else (None,) * 5
        if stem or is_head:
            of[name] = 0 if stem else head
        elif down is not None and int(down) in first:
            of[name] = first[int(down)]
        elif stage is not None:
            of[name] = first[int(stage)] + int(block) // group
        else:
            raise TrainError(f"layer_decay cannot place parameter `{name}`: it is in neither the stem, a "
                             "downsample layer in front of a stage, a stage's blocks, nor the head",
                             hint="layer-wise decay counts layers from the stem through the stages' blocks "
                                  "to the head; leave layer_decay at 1 for this model", code="E761")
    return Layers(of, labels)


def describe(layers: Layers, decay: float, group: int) -> str:
    """One line for the run's start: `layer decay 0.7 over 14 layers (layers of up to 3 blocks,
    within a stage): stem x0.0097, stages.0 x0.014, ..., head x1`."""
    scales = layers.scales(decay)
    parts = ", ".join(f"{label} x{s:.2g}" for label, s in zip(layers.labels, scales))
    blocks = "one block a layer" if group == 1 else f"layers of up to {group} blocks, within a stage"
    return f"layer decay {decay:g} over {len(scales)} layers ({blocks}): {parts}"
