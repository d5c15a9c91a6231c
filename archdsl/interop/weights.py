"""Load checkpoints people already hold (official ConvNeXt, timm, torchvision) into a built model.

A layout is a plain tuple of `Rule`s, each mapping one family of foreign keys onto archdsl's
native names (module paths from the spec: `stem.0`, `stages.2.blocks.5.dwconv`, `head.fc`):

    Rule("convnext", "features.{2i+1}.{j}.block.0.{p}", "stages.{i}.blocks.{j}.dwconv.{p}")

In a source pattern `{i}`, `{j}`, `{k}` match a non-negative index, `{2i+1}` or `{i+1}` an
affine one (solved for the index), and `{p}` one parameter name (`weight`, `running_mean`);
a target may shift an index (`downsample.{i+1}`), and an empty target marks a tensor the
model derives and does not load (Swin's `relative_position_index` and `attn_mask`).
The first rule that matches a key and names a tensor the model has wins (so one foreign name,
`norm1` or `head.fc`, can mean another native module in another family); with no such rule,
the first that matches. A tensor whose shape differs from the model's only
by size-1 axes is reshaped (Linear [out, in] <-> 1x1 conv [out, in, 1, 1]; layer scale
[C] <-> [C, 1, 1]); a checkpoint made at another input size, channel count or class count
is fitted as timm does (resize.py: position embeddings resampled, Swin's bias tables resized,
the input conv adapted, a fresh head), each change printed; any other difference is an error.
Every missing, unexpected and mis-shaped key is reported together in one `WeightsError`
(its message shows the first ones of each kind; `error.missing`, `.unexpected` and
`.misshaped` list them all).

Two forms of a checkpoint are taken as they are meant: torch's `AveragedModel` state dict
(an EMA, as a run's `ema.safetensors`: the model's names under `module.` and a counter
`n_averaged`) is unwrapped, and into a features build (`archdsl.build(spec, features=True)`,
which records the module paths it cut in `model.cut_modules`) the tensors of the modules it
does not compute (the head, blocks after the last tap) are left out. Each is said in a note.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Collection, Container, Mapping

import torch
from torch import nn

from compiler.init import rebuild_buffers
from compiler.sections import within

from ..lang.errors import WeightsError
from ..lang.suggest import did_you_mean
from .resize import FRESH, Change, Roles, fit, roles_of

_SLOT = re.compile(r"\{(\d*)([a-z])(?:\+(\d+))?\}")


@dataclass(frozen=True)
class Rule:
    family: str  # "convnext", "resnet", "mobilenet" (`|` where one rule serves two): for tests to group by
    source: str  # foreign key pattern, e.g. "stages.{i}.{j}.gamma"
    target: str  # native key template, e.g. "stages.{i}.blocks.{j}.layerscale.gamma"

    def apply(self, key: str) -> str | None:
        """The native name of `key`, or None when this rule does not match it."""
        regex, slots = _compile(self.source)
        m = regex.fullmatch(key)
        if not m:
            return None
        values: dict[str, str | int] = {}
        for group, (scale, var, offset) in zip(m.groups(), slots):
            if var == "p":
                values["p"] = group
                continue
            n = int(group) - offset
            if n < 0 or n % scale:
                return None  # e.g. an odd index against `{2i}`
            if values.setdefault(var, n // scale) != n // scale:
                return None
        if not self.target:
            return ""  # a derived tensor the model rebuilds (Swin's index and mask buffers)
        return _SLOT.sub(lambda t: str(values[t[2]] + int(t[3] or 0)) if t[2] != "p" else str(values["p"]),
                         self.target)


_COMPILED: dict[str, tuple[re.Pattern, list[tuple[int, str, int]]]] = {}


def _compile(pattern: str) -> tuple[re.Pattern, list[tuple[int, str, int]]]:
    if pattern not in _COMPILED:
        parts, slots, pos = [], [], 0
        for m in _SLOT.finditer(pattern):
            parts.append(re.escape(pattern[pos:m.start()]))
            scale, var, offset = m.groups()
            parts.append(r"([A-Za-z_]+)" if var == "p" else r"(\d+)")
            slots.append((int(scale or 1), var, int(offset or 0)))
            pos = m.end()
        parts.append(re.escape(pattern[pos:]))
        _COMPILED[pattern] = (re.compile("".join(parts)), slots)
    return _COMPILED[pattern]


def _block_rules(family: str, block: str, modules: dict[str, str]) -> tuple[Rule, ...]:
    """One rule per module of a block: `{block}.{foreign}.{p}` -> `stages.{i}.blocks.{j}.{native}.{p}`."""
    return tuple(Rule(family, f"{block}.{src}.{{p}}", f"stages.{{i}}.blocks.{{j}}.{dst}.{{p}}")
                 for src, dst in modules.items())


_GAMMA = "stages.{i}.blocks.{j}.layerscale.gamma"

# SE-ResNet (timm `seresnet50`): torchvision's ResNet names, the SE module's 1x1 convs as `se.fc1/fc2`.
_SE_RESNET: tuple[Rule, ...] = (
    Rule("resnet", "conv1.{p}", "stem.0.{p}"),
    Rule("resnet", "bn1.{p}", "stem.1.{p}"),
    *_block_rules("resnet", "layer{i+1}.{j}", {
        **{f"{m}{n}": f"{m}{n}" for n in (1, 2, 3) for m in ("conv", "bn")},
        "se.fc1": "gate.conv1", "se.fc2": "gate.conv2",
        "downsample.0": "shortcut.0", "downsample.1": "shortcut.1"}),
    Rule("resnet", "fc.{p}", "head.fc.{p}"),
)


def _mobilenet_v2_rules() -> tuple[Rule, ...]:
    """torchvision MobileNetV2: `features.0` the stem, `features.1..17` the 17 inverted residuals
    (depths 1,2,3,4,3,3,1 over 7 stages), `features.18` the last 1x1 conv, `classifier.1` the fc.
    A block with expansion is `conv.0` (expand conv+BN), `conv.1` (depthwise conv+BN), `conv.2`
    (project conv), `conv.3` (BN); the first block (t = 1) has no `conv.0` and the rest move up."""
    rules = [Rule("mobilenet", "features.18.0.{p}", "head.conv.{p}"),
             Rule("mobilenet", "features.18.1.{p}", "head.bn.{p}"),
             Rule("mobilenet", "classifier.1.{p}", "head.fc.{p}")]
    first = {"conv.0.0": "dwconv", "conv.0.1": "bn2", "conv.1": "conv2", "conv.2": "bn3"}
    expanded = {"conv.0.0": "conv1", "conv.0.1": "bn1", "conv.1.0": "dwconv", "conv.1.1": "bn2",
                "conv.2": "conv2", "conv.3": "bn3"}
    starts = (1, 2, 4, 7, 11, 14, 17)  # features index of each stage's first block
    for i in reversed(range(len(starts))):  # the first rule that matches wins: latest stage first
        modules = first if i == 0 else expanded
        rules += [Rule("mobilenet", f"features.{{j+{starts[i]}}}.{src}.{{p}}",
                       f"stages.{i}.blocks.{{j}}.{dst}.{{p}}") for src, dst in modules.items()]
    return tuple(rules)


OFFICIAL: tuple[Rule, ...] = (
    Rule("convnext", "downsample_layers.0.{k}.{p}", "stem.{k}.{p}"),
    Rule("convnext", "downsample_layers.{i}.{k}.{p}", "downsample.{i}.{k}.{p}"),
    *_block_rules("convnext", "stages.{i}.{j}", {
        "dwconv": "dwconv", "norm": "norm", "pwconv1": "pwconv1", "pwconv2": "pwconv2",
        "grn": "grn"}),  # grn: ConvNeXt V2's gamma and beta
    Rule("convnext", "stages.{i}.{j}.gamma", _GAMMA),
    Rule("convnext", "norm.{p}", "head.norm.{p}"),
    Rule("convnext", "head.{p}", "head.fc.{p}"),
)

# PoolFormer v1 (timm `poolformer_s12`, metaformer.py) as `specs/poolformer_s12.arch` writes it: each
# block is two residuals, `gn g1, subtract { avgpool3 }, layerscale` and `gn g1, pwconv 4x, gelu, pwconv,
# layerscale` (its `mlp.fc1/fc2` are ConvNeXt's rules); the downsample is one conv.
_POOLFORMER: tuple[Rule, ...] = (
    Rule("poolformer", "stem.conv.{p}", "stem.0.{p}"),
    Rule("poolformer", "stages.{i}.downsample.conv.{p}", "downsample.{i}.0.{p}"),
    *_block_rules("poolformer", "stages.{i}.blocks.{j}", {"norm1": "gn1", "norm2": "gn2"}),
    Rule("poolformer", "stages.{i}.blocks.{j}.layer_scale1.scale", "stages.{i}.blocks.{j}.layerscale1.gamma"),
    Rule("poolformer", "stages.{i}.blocks.{j}.layer_scale2.scale", "stages.{i}.blocks.{j}.layerscale2.gamma"),
)

# CoAtNet (timm `coatnet_0_224`, maxxvit.py) as `specs/coatnet_0.arch` writes it: the stem is
# `conv3 s2, bn, gelu, conv3`; an MBConv block `bn, conv1, bn, gelu, dwconv3, bn, gelu, gate, conv1`
# with the shortcut `avgpool2, conv1` (`shortcut.expand`); a Transformer block's `norm1` is
# `norm1.norm` where it downsamples; the head is `gap, ln, linear, tanh, linear`.
_COATNET: tuple[Rule, ...] = (
    Rule("coatnet", "stem.conv1.{p}", "stem.0.{p}"),
    Rule("coatnet", "stem.norm1.{p}", "stem.1.{p}"),
    Rule("coatnet", "stem.conv2.{p}", "stem.3.{p}"),
    *_block_rules("coatnet", "stages.{i}.blocks.{j}", {
        "shortcut.expand": "shortcut.1", "pre_norm": "bn1", "conv1_1x1": "conv1", "norm1": "bn2",
        "conv2_kxk": "dwconv", "norm2": "bn3", "se.fc1": "gate.conv1", "se.fc2": "gate.conv2",
        "conv3_1x1": "conv2"}),
    *_block_rules("coatnet", "stages.{i}.blocks.{j}", {
        "norm1.norm": "norm1", "norm1": "norm1", "attn.qkv": "attn.qkv", "attn.proj": "attn.proj",
        "norm2": "norm2"}),  # its `mlp.fc1/fc2` are ConvNeXt's rules
    Rule("coatnet", "stages.{i}.blocks.{j}.attn.rel_pos.relative_position_bias_table",
         "stages.{i}.blocks.{j}.attn.relative_position_bias_table"),
    Rule("coatnet", "head.pre_logits.fc.{p}", "head.fc1.{p}"),
    Rule("coatnet", "head.fc.{p}", "head.fc2.{p}"),
)

TIMM: tuple[Rule, ...] = (
    Rule("convnext", "stem.{k}.{p}", "stem.{k}.{p}"),
    Rule("convnext", "stages.{i}.downsample.{k}.{p}", "downsample.{i}.{k}.{p}"),
    *_block_rules("convnext", "stages.{i}.blocks.{j}", {"conv_dw": "dwconv", "norm": "norm"}),
    *_block_rules("convnext|poolformer|coatnet", "stages.{i}.blocks.{j}", {"mlp.fc1": "pwconv1", "mlp.fc2": "pwconv2"}),
    Rule("convnext", "stages.{i}.blocks.{j}.gamma", _GAMMA),
    Rule("convnext", "stages.{i}.blocks.{j}.mlp.grn.weight", "stages.{i}.blocks.{j}.grn.gamma"),  # V2
    Rule("convnext", "stages.{i}.blocks.{j}.mlp.grn.bias", "stages.{i}.blocks.{j}.grn.beta"),
    Rule("convnext|poolformer|coatnet", "head.norm.{p}", "head.norm.{p}"),
    Rule("convnext|poolformer", "head.fc.{p}", "head.fc.{p}"),
    *_SE_RESNET,
    *_POOLFORMER,  # its MLP and head (`head.norm`, `head.fc`) are ConvNeXt's
    *_COATNET,
)

# DenseNet (torchvision `densenet121`) as `specs/densenet121.arch` writes it: `features.conv0/norm0`
# the stem, `denseblock{i+1}.denselayer{j+1}` a stage's `concat { bn, relu, conv1, bn, relu, conv3 }`,
# `transition{i}` the downsample in front of stage i (bn, relu, conv1, avgpool), `norm5` the head's bn.
_DENSENET: tuple[Rule, ...] = (
    Rule("densenet", "features.conv0.{p}", "stem.0.{p}"),
    Rule("densenet", "features.norm0.{p}", "stem.1.{p}"),
    *(Rule("densenet", f"features.denseblock{{i+1}}.denselayer{{j+1}}.{src}.{{p}}",
           f"stages.{{i}}.blocks.{{j}}.{dst}.{{p}}")
      for src, dst in {"norm1": "bn1", "conv1": "conv1", "norm2": "bn2", "conv2": "conv2"}.items()),
    Rule("densenet", "features.transition{i}.norm.{p}", "downsample.{i}.0.{p}"),
    Rule("densenet", "features.transition{i}.conv.{p}", "downsample.{i}.2.{p}"),
    Rule("densenet", "features.norm5.{p}", "head.bn.{p}"),
    Rule("densenet", "classifier.{p}", "head.fc.{p}"),
)

TORCHVISION: tuple[Rule, ...] = (
    *_DENSENET,
    *_mobilenet_v2_rules(),  # before ConvNeXt's `features.{2i}`, which would take features.18
    # ConvNeXt: features alternate stem, stage 0, downsample 1, stage 1, ...
    Rule("convnext|mobilenet", "features.0.{k}.{p}", "stem.{k}.{p}"),  # both: conv, norm
    Rule("convnext", "features.{2i}.{k}.{p}", "downsample.{i}.{k}.{p}"),
    *_block_rules("convnext", "features.{2i+1}.{j}", {
        "block.0": "dwconv", "block.2": "norm", "block.3": "pwconv1", "block.5": "pwconv2"}),
    Rule("convnext", "features.{2i+1}.{j}.layer_scale", _GAMMA),
    Rule("convnext", "classifier.0.{p}", "head.norm.{p}"),
    Rule("convnext", "classifier.2.{p}", "head.fc.{p}"),
    # ResNet (Bottleneck): conv1 and bn1 are the stem, layer1..4 the stages
    Rule("resnet", "conv1.{p}", "stem.0.{p}"),
    Rule("resnet", "bn1.{p}", "stem.1.{p}"),
    *_block_rules("resnet", "layer{i+1}.{j}", {
        **{f"{m}{n}": f"{m}{n}" for n in (1, 2, 3) for m in ("conv", "bn")},
        "downsample.0": "shortcut.0", "downsample.1": "shortcut.1"}),
    Rule("resnet", "fc.{p}", "head.fc.{p}"),
)

# Swin (microsoft/Swin-Transformer) as `specs/swin_*.arch` write it: the stem is
# `conv4 s4, ln`, each layer's patch merging runs in front of the next stage
# (`downsample.{i+1}`: merge, ln, pwconv), the head is `ln, gap, linear`.
SWIN_OFFICIAL: tuple[Rule, ...] = (
    Rule("swin", "patch_embed.proj.{p}", "stem.0.{p}"),
    Rule("swin", "patch_embed.norm.{p}", "stem.1.{p}"),
    *_block_rules("swin", "layers.{i}.blocks.{j}", {
        "norm1": "norm1", "attn.qkv": "attn.qkv", "attn.proj": "attn.proj", "norm2": "norm2",
        "mlp.fc1": "pwconv1", "mlp.fc2": "pwconv2"}),
    Rule("swin", "layers.{i}.blocks.{j}.attn.relative_position_bias_table",
         "stages.{i}.blocks.{j}.attn.relative_position_bias_table"),
    Rule("swin", "layers.{i}.blocks.{j}.attn.relative_position_index", ""),
    Rule("swin", "layers.{i}.blocks.{j}.attn_mask", ""),
    Rule("swin", "layers.{i}.downsample.norm.{p}", "downsample.{i+1}.1.{p}"),
    Rule("swin", "layers.{i}.downsample.reduction.{p}", "downsample.{i+1}.2.{p}"),
)

# ViT / DeiT (timm's VisionTransformer) as `specs/deit_s.arch` writes it: the stem is
# `conv16 s16, tokens, clstoken, posembed`, the head `ln, clspool, linear`.
VIT_TIMM: tuple[Rule, ...] = (
    Rule("vit", "patch_embed.proj.{p}", "stem.0.{p}"),
    Rule("vit", "cls_token", "stem.2.cls_token"),
    Rule("vit", "pos_embed", "stem.3.pos_embed"),
    *(Rule("vit", f"blocks.{{j}}.{src}.{{p}}", f"stages.0.blocks.{{j}}.{dst}.{{p}}") for src, dst in {
        "attn.qkv": "attn.qkv", "attn.proj": "attn.proj", "mlp.fc1": "pwconv1", "mlp.fc2": "pwconv2"}.items()),
    # MLP-Mixer (below) names its norms and head as ViT does
    *(Rule("vit|mixer", f"blocks.{{j}}.{n}.{{p}}", f"stages.0.blocks.{{j}}.{n}.{{p}}") for n in ("norm1", "norm2")),
    Rule("vit|mixer", "norm.{p}", "head.norm.{p}"),
    Rule("vit|mixer", "head.{p}", "head.fc.{p}"),
)

# MLP-Mixer (timm `mixer_s16_224`, mlp_mixer.py) as `specs/mixer_s16.arch` writes it: the stem is
# `conv16 s16, tokens`, a block `ln, tokenmlp` and `ln, pwconv 4x, gelu, pwconv`; its norms and head
# are named as ViT's (`blocks.{j}.norm1`, `norm`, `head`).
MIXER_TIMM: tuple[Rule, ...] = (
    Rule("mixer", "stem.proj.{p}", "stem.0.{p}"),
    *(Rule("mixer", f"blocks.{{j}}.{src}.{{p}}", f"stages.0.blocks.{{j}}.{dst}.{{p}}") for src, dst in {
        "mlp_tokens.fc1": "tokenmlp.fc1", "mlp_tokens.fc2": "tokenmlp.fc2",
        "mlp_channels.fc1": "pwconv1", "mlp_channels.fc2": "pwconv2"}.items()),
)

# "native" takes keys as they are; the others rename through their rules.
LAYOUTS: dict[str, tuple[Rule, ...]] = {
    "native": (),
    "official": OFFICIAL + SWIN_OFFICIAL,
    "timm": TIMM + VIT_TIMM + MIXER_TIMM,
    "torchvision": TORCHVISION,
}


def native_name(key: str, layout: str, target: Container[str] | None = None) -> str | None:
    """The native name a foreign `key` maps to under `layout`, or None if no rule takes it.
    With `target` (the model's names), a rule whose name the model has wins over an earlier one."""
    if layout == "native":
        return key
    first = None
    for rule in LAYOUTS[layout]:
        name = rule.apply(key)
        if name is None:
            continue
        if target is None or name == "" or name in target:
            return name
        first = name if first is None else first
    return first


def _squeezed(shape: torch.Size) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


@dataclass
class _Problems:
    missing: list[str]
    unexpected: list[tuple[str, str]]  # (checkpoint key, why)
    misshaped: list[tuple[str, str, str]]  # (checkpoint key, native key, what differs)

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.misshaped)


def convert(state_dict: Mapping[str, torch.Tensor], layout: str,
            target: Mapping[str, torch.Size], roles: Roles | None = None,
            changes: list[Change] | None = None, *, cut: Collection[str] = (),
            notes: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Rename and reshape `state_dict` onto the keys and shapes of `target`, or raise a
    `WeightsError` naming every missing, unexpected and mis-shaped key. With `roles`, tensors
    made at another input size, channel count or class count are fitted (resize.py) and each
    change appended to `changes`; a fresh tensor maps to FRESH. An EMA (`AveragedModel`) state
    dict is unwrapped; tensors of the modules in `cut` (what a features build does not compute)
    are left out. Each of those is appended to `notes`."""
    if layout not in LAYOUTS:
        raise WeightsError(f"unknown weights layout `{layout}`",
                           hint=did_you_mean(layout, list(LAYOUTS)) or
                           "layouts: " + ", ".join(f"`{n}`" for n in LAYOUTS))
    state_dict, ema = strip_averaged(_unwrap(state_dict))
    said = notes if notes is not None else []
    if ema:
        said.append(ema)
    out: dict[str, torch.Tensor] = {}
    source_of: dict[str, str] = {}  # native key -> the checkpoint key that claimed it
    problems = _Problems([], [], [])
    left_out: list[str] = []
    for key, value in state_dict.items():
        name = native_name(key, layout, target)
        if name == "":
            continue  # derived by the model, not loaded
        if name is None:
            problems.unexpected.append((key, f"no rule of layout `{layout}` maps it"))
        elif name not in target and cut and within(name, cut):
            left_out.append(name)
        elif name not in target:
            problems.unexpected.append((key, (f"-> `{name}`, which" if name != key else "which") +
                                        " the model does not have"))
        elif name in source_of:
            problems.unexpected.append((key, f"-> `{name}`, already given by `{source_of[name]}`"))
        else:
            source_of[name] = key
            want = target[name]
            if not isinstance(value, torch.Tensor):
                problems.misshaped.append((key, name, f"a {type(value).__name__}, not a tensor"))
            elif value.shape == want:
                out[name] = value
            elif _squeezed(value.shape) == _squeezed(want):
                out[name] = value.reshape(want)
            elif roles is not None and (fitted := fit(roles, name, key, value, tuple(want))) is not None:
                out[name] = fitted[0]
                if changes is not None:
                    changes.append(Change(name, key, fitted[1]))
            else:
                problems.misshaped.append(
                    (key, name, f"checkpoint {list(value.shape)}, model {list(want)}"))
    problems.missing = [name for name in target if name not in source_of]
    if problems:
        raise _weights_error(layout, problems, state_dict, target)
    if left_out:
        said.append(f"left out: {len(left_out)} tensor{'s' if len(left_out) != 1 else ''} of "
                    f"{_parts(left_out)}, which a features build does not compute")
    return {name: out[name] for name in target}


EMA_NOTE = "EMA weights (AveragedModel): module. prefix and n_averaged dropped"


def strip_averaged(state_dict: Mapping) -> tuple[Mapping, str | None]:
    """torch's `AveragedModel` state dict (a run's `ema.safetensors`: every key but the counter
    `n_averaged` under `module.`) as the averaged model's own, and a note saying so; anything
    else as it is, and None."""
    keys = [k for k in state_dict if k != "n_averaged"]
    if "n_averaged" not in state_dict or not keys or \
            not all(isinstance(k, str) and k.startswith("module.") for k in keys):
        return state_dict, None
    return {k.removeprefix("module."): state_dict[k] for k in keys}, EMA_NOTE


_PART = re.compile(r"(stem|head|downsample\.\d+|stages\.\d+\.blocks\.\d+|stages\.\d+)(?:\.|$)")


def _parts(names: list[str]) -> str:
    """The sections `names` lie in, in words: `the head`, `stages.0.blocks.6-11 and the head`."""
    blocks: dict[str, list[int]] = {}
    order: list[str] = []
    for name in names:
        m = _PART.match(name)
        part = m.group(1) if m else name.rpartition(".")[0]
        stage, _, j = part.partition(".blocks.")
        key = f"{stage}.blocks" if j else part
        if key not in blocks:
            order.append(key)
            blocks[key] = []
        if j:
            blocks[key].append(int(j))
    words = []
    for key in order:
        js = sorted(set(blocks[key]))
        if not js:
            words.append("the head" if key == "head" else f"`{key}`")
        elif len(js) == 1:
            words.append(f"`{key}.{js[0]}`")
        else:
            run = js == list(range(js[0], js[-1] + 1))
            words.append(f"`{key}.{js[0]}-{js[-1]}`" if run else f"`{key}.{','.join(map(str, js))}`")
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _unwrap(state_dict: Mapping) -> Mapping:
    """Checkpoints often hold the weights under "model" or "state_dict"."""
    if any(isinstance(v, torch.Tensor) for v in state_dict.values()):
        return state_dict
    for wrapper in ("model", "state_dict"):
        if isinstance(state_dict.get(wrapper), Mapping):
            return state_dict[wrapper]
    return state_dict


def _fits(state_dict: Mapping, layout: str, target: Mapping) -> int:
    return sum(native_name(k, layout, target) in target for k in state_dict)


SHOWN = 20  # problem lines a WeightsError's message shows; its lists hold them all


def _weights_error(layout: str, problems: _Problems, state_dict: Mapping,
                   target: Mapping) -> WeightsError:
    kinds = [("missing", [f"  missing: `{name}` {list(target[name])}" for name in problems.missing]),
             ("unexpected", [f"  unexpected: `{key}` ({why})" for key, why in problems.unexpected]),
             ("mis-shaped", [f"  mis-shaped: `{key}`" + (f" -> `{name}`" if name != key else "") + f": {what}"
                             for key, name, what in problems.misshaped])]
    kinds = [(title, found) for title, found in kinds if found]
    lines = []
    for title, found in kinds:  # each kind gets its share of the lines shown
        share = max(5, SHOWN // len(kinds))
        shown = found if len(found) <= share + 1 else found[:share]
        lines += shown
        if len(shown) < len(found):
            lines.append(f"  ... and {len(found) - len(shown)} more {title} (the error's "
                         f"`{title.replace('-', '')}` lists them all)")
    counts = ", ".join(f"{n} {title}" for title, n in (
        ("missing", len(problems.missing)), ("unexpected", len(problems.unexpected)),
        ("mis-shaped", len(problems.misshaped))) if n)
    best = max(LAYOUTS, key=lambda n: _fits(state_dict, n, target))
    hint = None
    if best != layout and _fits(state_dict, best, target) > _fits(state_dict, layout, target):
        hint = f"these keys look like layout `{best}`: try layout=\"{best}\""
    error = WeightsError(f"weights in layout `{layout}` do not fit the model ({counts}):\n"
                         + "\n".join(lines), hint=hint)
    error.missing = list(problems.missing)
    error.unexpected = [key for key, _ in problems.unexpected]
    error.misshaped = [key for key, _, _ in problems.misshaped]
    return error


def load_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                 layout: str = "native", *, quiet: bool = False) -> nn.Module:
    """Load `state_dict`, written in `layout`, into `model` strictly; return the model.

    Weights made at another input size, input channels or classes are fitted as timm does
    (position embeddings resampled bicubically, Swin's bias tables resized to the window, the
    input conv adapted, a fresh head: resize.py); each change is printed unless `quiet` and
    kept in `model.weights_changes`. An EMA's `AveragedModel` state dict (`ema.safetensors`)
    is unwrapped, and into a features build the checkpoint's tensors of what it does not
    compute (its head) are left out; both are printed and kept in `model.weights_notes`.
    Raises `WeightsError` naming every missing, unexpected and mis-shaped key."""
    _check_arguments(model, state_dict, layout)
    own = model.state_dict()
    changes: list[Change] = []
    notes: list[str] = []
    converted = convert(state_dict, layout, {k: v.shape for k, v in own.items()}, roles_of(model), changes,
                        cut=getattr(model, "cut_modules", ()), notes=notes)
    on_meta = any(t.is_meta for t in own.values())
    for name in [n for n, v in converted.items() if isinstance(v, str) and v == FRESH]:
        converted[name] = _fresh(model, name)
    model.load_state_dict(converted, strict=True, assign=on_meta)
    model.weights_changes = changes
    model.weights_notes = notes
    if not quiet:
        for note in notes:
            print(f"load_weights: {note}")
    if changes and not quiet:
        print(f"load_weights: {len(changes)} tensor{'s' if len(changes) != 1 else ''} fitted to the model:")
        print("\n".join(f"  {c.path}" + (f" <- {c.source}" if c.source != c.path else "") + f"  ({c.how})"
                        for c in changes))
    if on_meta:  # buffers no checkpoint holds (Swin's index and mask) are computed now
        rebuild_buffers(model)
    return model


def _fresh(model: nn.Module, name: str) -> torch.Tensor:
    """The model's own tensor for `name` (a new head), initialised now if the model is on meta."""
    owner, _, leaf = name.rpartition(".")
    module = model.get_submodule(owner)
    tensor = getattr(module, leaf)
    if tensor.is_meta:
        module.to_empty(device="cpu")
        module.reset_parameters()  # PyTorch's default for a Linear/Conv2d
        tensor = getattr(module, leaf)
    return tensor.detach()


def _check_arguments(model, state_dict, layout) -> None:
    """Misuse is an error with a hint, not a TypeError from deep inside."""
    if not isinstance(model, nn.Module):
        raise WeightsError(f"load_weights takes a model (an nn.Module) first, not {type(model).__name__}",
                           hint='build one with archdsl.build("convnext_t")', code="E801")
    if isinstance(state_dict, (str, bytes)) or hasattr(state_dict, "__fspath__"):
        raise WeightsError(f"load_weights takes a state dict, not a path (`{state_dict}`)",
                           hint="read the file first: safetensors.torch.load_file(path), or "
                                "torch.load(path, weights_only=True)", code="E801")
    if not isinstance(state_dict, Mapping):
        raise WeightsError(f"load_weights takes a state dict (name -> tensor), not {type(state_dict).__name__}",
                           hint="for example model.state_dict() or safetensors.torch.load_file(path)",
                           code="E801")
    if not isinstance(layout, str):
        raise WeightsError(f"`layout` takes a name, not {type(layout).__name__}",
                           hint="layouts: " + ", ".join(LAYOUTS), code="E801")
