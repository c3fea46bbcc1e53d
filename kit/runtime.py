"""Where and how tensors run: device and the DDP process group, precision and autocast, seeding, memory.

Training, inference, soups and benchmarks all stand on this, not on the training loop.
"""

from __future__ import annotations

import os
import random
import resource
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

#: Mixed-precision modes by name (``fp32`` runs without autocast).
PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class Runtime:
    """Where this process runs: device, distributed rank and world size."""

    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def start(cls) -> Runtime:
        """The GPU of this process (``LOCAL_RANK`` under torchrun) or the CPU; joins the process group if any."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        cuda = torch.cuda.is_available()
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
        rank = dist.get_rank() if world > 1 else 0
        if cuda:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            return cls(torch.device("cuda", local), rank, world)
        return cls(torch.device("cpu"), rank, world)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """Mixed precision context (a no-op for fp32)."""
    dtype = PRECISIONS[precision]
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated on a GPU; the process's peak resident memory on the CPU.

    On Linux that is ``VmHWM`` of ``/proc/self/status``: ``getrusage``'s ``ru_maxrss`` keeps the peak of the
    process it was forked from across ``exec``, so a worker started by a large process would report the parent's.
    """
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def to_device(batch: dict[str, Any], device: torch.device, channels_last: bool = False) -> dict[str, Any]:
    """A batch's tensors on ``device`` (images channels-last if asked); other entries as they are."""
    out = {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    if channels_last:
        out["image"] = out["image"].contiguous(memory_format=torch.channels_last)
    return out
