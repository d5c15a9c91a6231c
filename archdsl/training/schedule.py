"""Optimizer and learning-rate schedule from a recipe, with torch.optim and its lr_scheduler.

The schedule advances once per optimizer step (not per epoch), so a 5-epoch run gets a smooth
warm-up and cosine rather than five plateaus. Epoch-valued recipe fields (warmup, milestones)
are converted to steps here:

    warmup W steps:  lr * (t + 1) / (W + 1)             for t = 0 .. W-1   (LinearLR)
    then cosine:     min_lr + (lr - min_lr) * (1 + cos(pi * s / S)) / 2, s = t - W, S = T - W
    or step:         lr * gamma ** (number of milestones <= t), or with `every N`
                     lr * gamma ** floor(t / (N epochs))
    or constant:     lr

With `layer_decay` each parameter group carries an `lr_scale` (training/layer_decay.py) and
every value above is multiplied by it, min_lr included, as the official ConvNeXt's
`param_group["lr"] = lr_schedule_values[it] * param_group["lr_scale"]`; weight decay is not
scaled (the official sets every decayed group's to the same value).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim import lr_scheduler as sched

from ..lang.recipe import TrainRecipe
from .layer_decay import assign_layers


# Parameters the official optimizer factories exempt from weight decay by name: timm's
# VisionTransformer.no_weight_decay() (ViT, DeiT: cls_token, pos_embed, dist_token), Swin's
# no_weight_decay() (absolute_pos_embed) and no_weight_decay_keywords()
# (relative_position_bias_table).
NO_DECAY_NAMES = frozenset({"cls_token", "pos_embed", "dist_token", "absolute_pos_embed",
                            "relative_position_bias_table"})


def decays(name: str, p: torch.Tensor, module: nn.Module) -> bool:
    """Whether AdamW decays parameter `name` of `module` (its owner), as the official factories
    decide: not 1-d tensors (norm scales, layer scale), not biases, not the names above, not
    ConvNeXt V2's GRN gamma/beta (shape (1, 1, 1, C): its optim_factory exempts `.gamma` and
    `.beta` by name, which the ndim rule alone misses)."""
    from compiler.modules import GRN

    leaf = name.rsplit(".", 1)[-1]
    return not (p.ndim <= 1 or leaf == "bias" or leaf in NO_DECAY_NAMES or isinstance(module, GRN))


def param_groups(model: nn.Module, recipe: TrainRecipe) -> list[dict]:
    """AdamW: decayed and exempt parameters as the official ConvNeXt/DeiT/Swin/ConvNeXt V2 code
    splits them (`decays`); SGD: decay on everything, as in the torchvision ResNet recipe.
    With `layer_decay`, one group per (layer, decayed or not), as the official
    `get_parameter_groups`, each with lr = recipe lr x its `lr_scale`, in layer order."""
    owners = dict(model.named_modules())
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay_all = recipe.optimizer == "sgd" or recipe.wd == 0
    split = [decay_all or decays(n, p, owners[n.rpartition(".")[0]]) for n, p in params]
    if recipe.layer_decay != 1.0:
        return _layer_groups(model, recipe, params, split)
    if decay_all:
        return [{"params": [p for _, p in params], "weight_decay": recipe.wd}]
    return [{"params": [p for (_, p), d in zip(params, split) if d], "weight_decay": recipe.wd},
            {"params": [p for (_, p), d in zip(params, split) if not d], "weight_decay": 0.0}]


def _layer_groups(model: nn.Module, recipe: TrainRecipe, params: list, split: list[bool]) -> list[dict]:
    """The official groups `layer_{id}_{decay|no_decay}`, each at its layer's lr scale."""
    layers = assign_layers(model, recipe.layer_group)
    scales = layers.scales(recipe.layer_decay)
    groups: dict[tuple[int, bool], dict] = {}
    for (name, p), decayed in zip(params, split):
        layer = layers.of[name]
        group = groups.setdefault((layer, not decayed), {
            "params": [], "weight_decay": recipe.wd if decayed else 0.0,
            "lr": recipe.lr * scales[layer], "lr_scale": scales[layer]})
        group["params"].append(p)
    return [groups[key] for key in sorted(groups)]


def schedule_lr(optimizer: torch.optim.Optimizer) -> float:
    """The schedule's lr now, for the report: that of the first group at scale 1 (the head's
    under layer decay; every group is at scale 1 without), else the first group's."""
    groups = optimizer.param_groups
    return next((g for g in groups if g.get("lr_scale", 1.0) == 1.0), groups[0])["lr"]


FUSED_DEVICES = ("cpu", "cuda")  # where torch has fused SGD and AdamW kernels


def build_optimizer(model: nn.Module, recipe: TrainRecipe) -> torch.optim.Optimizer:
    """The recipe's optimizer, as torch's fused kernel where the parameters' device has one:
    one pass over all parameters instead of a loop of small ops (ConvNeXt-T's AdamW step on
    the 2-core CPU: 12.5 ms fused, 57 ms as a loop, 39 ms `foreach`)."""
    groups = param_groups(model, recipe)
    devices = {p.device.type for g in groups for p in g["params"]}
    fused = len(devices) == 1 and devices <= set(FUSED_DEVICES) or None
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum,
                               nesterov=recipe.nesterov, fused=fused)
    return torch.optim.AdamW(groups, lr=recipe.lr, betas=recipe.betas, fused=fused)


def schedule_steps(recipe: TrainRecipe, steps_per_epoch: int) -> tuple[int, int, list[int]]:
    """(total steps, warm-up steps, milestone steps) for a run of `recipe.epochs`."""
    total = recipe.epochs * steps_per_epoch
    warmup = min(round(recipe.warmup * steps_per_epoch), total)
    milestones = [round(m * steps_per_epoch) for m in recipe.milestones]
    return total, warmup, milestones


def build_scheduler(optimizer: torch.optim.Optimizer, recipe: TrainRecipe,
                    steps_per_epoch: int) -> sched.LRScheduler:
    total, warmup, milestones = schedule_steps(recipe, steps_per_epoch)
    if recipe.schedule == "cosine" and recipe.layer_decay != 1.0:
        main: sched.LRScheduler = ScaledCosine(optimizer, max(total - warmup, 1), recipe.lr, recipe.min_lr)
    elif recipe.schedule == "cosine":
        main = sched.CosineAnnealingLR(
            optimizer, T_max=max(total - warmup, 1), eta_min=recipe.min_lr)
    elif recipe.schedule == "step" and recipe.every:
        main = sched.StepLR(optimizer, step_size=recipe.every * steps_per_epoch, gamma=recipe.gamma)
    elif recipe.schedule == "step":
        main = sched.MultiStepLR(optimizer, milestones=[max(m - warmup, 0) for m in milestones],
                                 gamma=recipe.gamma)
    else:
        main = sched.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if warmup == 0:
        return main
    ramp = sched.LinearLR(optimizer, start_factor=1.0 / (warmup + 1), end_factor=1.0,
                          total_iters=warmup)
    return sched.SequentialLR(optimizer, [ramp, main], milestones=[warmup])


class ScaledCosine(sched.LRScheduler):
    """Cosine from lr to min_lr, times each group's `lr_scale`, in closed form: the official
    ConvNeXt's `cosine_scheduler(lr, min_lr, ...)[t] * lr_scale`. torch's CosineAnnealingLR has
    one eta_min for all groups, which would leave every layer's floor at the unscaled min_lr.
    (Runs without layer decay keep CosineAnnealingLR, so they reproduce as before.)"""

    def __init__(self, optimizer: torch.optim.Optimizer, T_max: int, lr: float, min_lr: float,
                 last_epoch: int = -1):
        self.T_max, self.lr, self.min_lr = T_max, lr, min_lr
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        value = self.min_lr + 0.5 * (self.lr - self.min_lr) * (1 + math.cos(math.pi * self.last_epoch / self.T_max))
        return [value * g.get("lr_scale", 1.0) for g in self.optimizer.param_groups]

    _get_closed_form_lr = get_lr
