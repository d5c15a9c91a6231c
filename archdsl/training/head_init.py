"""The recipe's `head_init_scale S`: the head's last layer starts with its weight and bias
multiplied by S, as the official ConvNeXt does after init (`self.head.weight.data.mul_(S)`,
the bias alike), so a fresh classifier for fine-tuning starts with near-zero logits.

The official fine-tuning builds the model (head scaled), then loads the checkpoint, dropping
its head only where the shapes differ: S acts on a fresh head (another class count) and is
overwritten by a head that fits. archdsl runs the same order (scale, then `--init-from`) and
says which happened (`head_note`)."""
from __future__ import annotations

import torch
from torch import nn

from ..lang.errors import TrainError


def head_layer(model: nn.Module) -> tuple[str, nn.Module]:
    """The module path and module of the head's last layer with parameters: the classifier
    (`head.fc` for ConvNeXt; the second linear of CoAtNet's head)."""
    head = dict(model.named_children()).get("head")
    last = None
    for name, module in (head.named_children() if head is not None else ()):
        if any(True for _ in module.parameters()):
            last = (f"head.{name}", module)
    if last is None or not isinstance(last[1], (nn.Linear, nn.Conv2d)):
        what = "has no `head`" if head is None else (
            "has no layer with parameters in its head" if last is None else
            f"ends its head in `{last[0]}`, a {type(last[1]).__name__}")
        raise TrainError(f"head_init_scale scales the head's last linear layer, and this model {what}",
                         hint="end the spec's head in `linear` (or a 1x1 conv), or leave head_init_scale at 1",
                         code="E761")
    return last


def scale_head(model: nn.Module, scale: float) -> tuple[str, torch.Tensor]:
    """Multiply the head's last layer's weight and bias by `scale`; return its path and a copy
    of the scaled weight (for `head_note` to tell whether weights loaded later replaced it)."""
    path, layer = head_layer(model)
    with torch.no_grad():
        layer.weight.mul_(scale)
        if getattr(layer, "bias", None) is not None:
            layer.bias.mul_(scale)
    return path, layer.weight.detach().clone()


def head_note(model: nn.Module, scaled: tuple[str, torch.Tensor], scale: float, loaded: bool) -> str:
    """What became of the scaled head: kept, or replaced by `--init-from` weights that fit it."""
    path, weight = scaled
    kept = torch.equal(model.get_submodule(path).weight.detach(), weight)
    if not loaded:
        return f"head init scale {scale:g}: {path} starts at {scale:g} x its init (weight and bias)"
    if kept:
        return (f"head init scale {scale:g}: {path} is fresh (the --init-from weights do not fit it), "
                f"so it starts at {scale:g} x its init")
    return (f"head init scale {scale:g}: no effect, {path} was loaded from --init-from (its shape fits), "
            "as the official fine-tuning keeps a checkpoint's head that fits")
