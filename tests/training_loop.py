"""A few full-batch optimizer steps, for the tests that check a built model learns."""
from __future__ import annotations

import torch
from torch import nn


def training_losses(model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer,
                    steps: int) -> list[float]:
    """The cross-entropy loss before each of `steps` steps on the batch (x, y)."""
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
