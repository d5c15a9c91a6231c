"""From (spec, data, overrides) to what a run trains: the network, its recipe, its data.

Precedence, lowest first: the spec -> what the data says -> what the user says.

- The data sets `classes` and the input channels (and, for digits, a 32x32 input size: the
  images are 8x8, so 224x224 would cost 49x the compute for no information), unless the user
  overrides `classes` or `input`.
- A run shorter than the spec's (`--epochs 5` on a 300-epoch recipe) keeps the schedule's
  shape: warm-up and step milestones scale with the run, unless the user sets them.
- In a run shorter than the recipe's (fewer epochs, or a batch capped by a small dataset), an
  EMA whose horizon (1 / (1 - decay) steps) is longer than a tenth of the run gets a decay that
  makes it a tenth, the proportion of the paper's 0.9999 over its 94k steps, unless the user
  sets `ema`; otherwise the EMA would still be mostly the initial weights. The recipe's own
  run keeps the EMA as written.
- Data may call for recipe defaults of its own (digits: no mirror flips, no ImageNet-strength
  augmentation for a few epochs on 8x8 images); `DataInfo.recipe` holds them.
- A dataset far smaller than the recipe's batch (digits has 1,437 training images; the paper's
  batch is 4,096) gets a batch that leaves at least MIN_STEPS optimizer steps per epoch, and
  the learning rate follows it: linearly for SGD (Goyal et al., the paper's "0.1 per 256
  images"), by the square root for AdamW (the scaling rule for adaptive optimizers, Malladi et
  al. 2022), unless the user sets `batch` or `lr`.

Every adjustment is printed at the start of the run and kept in TrainResult.notes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..lang.errors import DataError, RecipeError
from ..lang.network import Network
from ..lang.overrides import NETWORK_KEYS, from_keywords
from ..lang.recipe import TrainRecipe
from .data import DataBundle, DataInfo, materialize, probe

MIN_STEPS = 16
# The paper's EMA (0.9999: a 10,000-step horizon) spans about a tenth of its 94k-step run.
EMA_RUN_FRACTION = 10


@dataclass
class Plan:
    network: Network
    data: DataBundle
    notes: list[str] = field(default_factory=list)

    @property
    def recipe(self) -> TrainRecipe:
        return self.network.train


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def adapt_recipe(spec: TrainRecipe, run: TrainRecipe, n_train: int, user: set[str]) -> tuple[dict, list[str]]:
    """Recipe values adjusted for a shorter run / a smaller dataset, and a note for each."""
    update: dict[str, Any] = {}
    notes: list[str] = []
    if run.epochs != spec.epochs:
        scale = run.epochs / spec.epochs
        if spec.warmup and "warmup" not in user:
            update["warmup"] = spec.warmup * scale
            notes.append(f"warm-up {_fmt(spec.warmup)} -> {_fmt(update['warmup'])} epochs "
                         f"({run.epochs} of the spec's {spec.epochs} epochs)")
        if spec.milestones and "milestones" not in user:
            # a run shorter than the milestones are many merges those that land on one epoch
            update["milestones"] = tuple(sorted({max(1, round(m * scale)) for m in spec.milestones}))
            notes.append(f"step milestones {list(spec.milestones)} -> {list(update['milestones'])}")
        if spec.every and "gamma" not in user and "every" not in user:
            # a step every N epochs: the same decay over the run as over the spec's epochs
            update["gamma"] = spec.gamma ** (spec.epochs / run.epochs)
            notes.append(f"step gamma {_fmt(spec.gamma)} -> {_fmt(update['gamma'])} every {spec.every} epochs "
                         f"(the spec's decay over {run.epochs} epochs)")
    cap = 2 ** int(math.log2(max(1, n_train // MIN_STEPS)))
    if run.batch > cap and "batch" not in user:
        update["batch"] = cap
        note = f"batch {run.batch} -> {cap} ({n_train} training images, >= {MIN_STEPS} steps an epoch)"
        if "lr" not in user:
            linear = run.optimizer == "sgd"
            update["lr"] = run.lr * (cap / run.batch if linear else math.sqrt(cap / run.batch))
            note += (f", lr {_fmt(run.lr)} -> {_fmt(update['lr'])} "
                     f"({'linear' if linear else 'square-root'} scaling)")
        notes.append(note)
    ema = update.get("ema", run.ema)
    # The recipe's own run (its epochs, its batch) keeps its EMA as written: 0.9999 over
    # ImageNet's 94k steps is the paper's. Only a run the user or the data shortened adapts it.
    shortened = run.epochs < spec.epochs or update.get("batch", run.batch) != spec.batch
    if ema is not None and "ema" not in user and shortened:
        batch = update.get("batch", run.batch)
        steps = run.epochs * max(1, n_train // batch) // run.accumulate
        if 1 / (1 - ema) > steps / EMA_RUN_FRACTION:
            update["ema"] = round(1 - EMA_RUN_FRACTION / max(steps, EMA_RUN_FRACTION + 1), 6)
            notes.append(f"EMA decay {ema:g} -> {update['ema']:g} (its horizon of "
                         f"{1 / (1 - ema):.0f} steps would outlast this {steps}-step run; kept at "
                         f"1/{EMA_RUN_FRACTION:g} of the run, as in the paper)")
    return update, notes


def user_keys(overrides: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(network keys, recipe fields) the user set."""
    keys = from_keywords(overrides)
    train = {k.removeprefix("train.") for k in keys if k.startswith("train.")}
    return {k for k in keys if not k.startswith("train.")}, train


def _has_batchnorm(net: Network) -> bool:
    from ..api import check

    _, ir = check(net)
    return any(d["op"] == "bn" for _, d in ir.op_nodes())


def plan(spec: Any, data: Any, epochs: int | None = None, skip_bad: bool = False, seed: int = 0,
         **overrides: Any) -> Plan:
    from ..api import as_network

    user = dict(from_keywords(overrides))
    if epochs is not None:
        user["train.epochs"] = epochs
    net_keys, train_keys = user_keys(user)
    info: DataInfo = probe(data, skip_bad=skip_bad)

    # a space's values (`w0=24`: a bare name, no network key) fix its open values as it loads
    values = {k: user.pop(k) for k in list(user) if "." not in k and k not in NETWORK_KEYS}
    spec_net = as_network(spec, **values)
    first = as_network(spec_net, **user)
    implied: dict[str, Any] = {}
    notes: list[str] = []
    if "classes" not in net_keys:
        implied["classes"] = info.classes
    elif first.classes < info.classes:
        raise DataError(f"the network has {first.classes} classes but {info.name} has {info.classes}",
                        hint=f"drop the `classes` override, or set classes={info.classes}", code="E704")
    if "input" not in net_keys:
        h, w = info.size or first.input[1:]
        implied["input"] = (info.channels, h, w)
    changed = {k: v for k, v in implied.items() if getattr(spec_net, k) != v}
    if changed:  # said as a change, so a 384 fine-tuning run on digits cannot pass for one at 384
        shown = lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else str(v)  # noqa: E731
        notes.append(f"from {info.name}: " + ", ".join(
            f"{k} {shown(getattr(spec_net, k))} -> {shown(v)}" for k, v in changed.items())
            + (" (set input= to train at the spec's size)" if "input" in changed else ""))
    data_recipe = {k: v for k, v in info.recipe.items()
                   if k not in train_keys and getattr(first.train, k) != v}
    if data_recipe:
        notes.append(f"{info.recipe_why}: " + ", ".join(
            f"{k} {getattr(first.train, k)} -> {v}" for k, v in data_recipe.items()))
    run = first.train.model_copy(update=data_recipe)
    update, more = adapt_recipe(spec_net.train, run, info.n_train, train_keys)
    notes += more
    update = {**data_recipe, **update}
    merged = {**implied, **{f"train.{k}": v for k, v in update.items()}, **user}
    net = as_network(spec_net, **merged)
    if net.train.batch < 2 and _has_batchnorm(net):
        raise RecipeError(f"a batch of {net.train.batch} cannot train {net.name}: BatchNorm needs at least 2 "
                          "samples per batch" + (f" ({info.name} has only {info.n_train} training images)"
                                                 if "batch" not in train_keys else ""),
                          hint="set `--set train.batch=2` or more" + (", or use more training images"
                                                                      if "batch" not in train_keys else ""),
                          code="E605")
    bundle = materialize(info, net.input, net.train, seed)
    if info.skipped:
        notes.append(f"skipped {len(info.skipped)} unreadable file(s), e.g. {info.skipped[0]}")
    if net.train.normalize == "auto":
        notes.append("normalize: " + ("ImageNet's mean/std (RGB input)" if net.input[0] == 3 else
                                      "the training images' own mean/std (grey input)")
                     + f" = {[round(m, 4) for m in bundle.mean]} / {[round(v, 4) for v in bundle.std]}")
    return Plan(net, bundle, notes)
