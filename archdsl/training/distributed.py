"""One process or many: what the training loop needs to know about its peers.

Under `torchrun` the environment carries RANK, WORLD_SIZE and LOCAL_RANK; the process group
is started here (gloo on CPU, nccl on GPU). Without them the run is a world of one and every
collective below is a no-op, so the loop has a single code path.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    started_here: bool = False  # whether we own the process group (and so tear it down)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def all_sum(self, values: list[float]) -> list[float]:
        """Elementwise sum of a short list of numbers over all processes."""
        if not self.active:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def any(self, flags: list[bool]) -> list[bool]:
        return [v > 0 for v in self.all_sum([float(f) for f in flags])]

    def gather(self, obj):
        """Every process's `obj`, in rank order, on every process."""
        if not self.active:
            return [obj]
        out: list = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def close(self) -> None:
        if self.started_here and dist.is_initialized():
            dist.destroy_process_group()


def setup(device: str | None = None) -> Dist:
    """Join the process group torchrun describes (if any) and pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    from ..api import as_device

    dev = as_device(device)
    if dev.type == "meta":
        from ..lang.errors import TrainError
        raise TrainError("cannot train on the meta device (it holds no values)",
                         hint="use --device cpu or cuda", code="E760")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    started = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        started = True
    if dist.is_initialized():
        world, rank = dist.get_world_size(), dist.get_rank()
    return Dist(rank, world, local, dev, started)
