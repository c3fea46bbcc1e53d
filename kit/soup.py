"""Checkpoint averaging ("model soup"): the mean of several checkpoints' weights, itself a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from kit.checkpoint import Checkpoint


def average_checkpoints(paths: Sequence[str | Path], out: str | Path) -> Path:
    """Average the float weights of ``paths`` (same architecture) into ``out``; evaluate it like any checkpoint.

    Integer buffers (BatchNorm's ``num_batches_tracked``) come from the first checkpoint;
    configs and postprocess settings too. The training state is dropped: a soup is for inference.
    """
    if not paths:
        raise ValueError("give at least one checkpoint to average")
    members = [Checkpoint.load(p) for p in paths]
    first = members[0]
    for path, member in zip(paths[1:], members[1:]):
        if member.model_config != first.model_config:
            raise ValueError(f"{path}: model {member.model_config} differs from {paths[0]}: {first.model_config}")
    averaged = {}
    for key, value in first.weights.items():
        if value.is_floating_point():
            averaged[key] = torch.stack([m.weights[key].double() for m in members]).mean(0).to(value.dtype)
        else:
            averaged[key] = value.clone()
    soup = Checkpoint(averaged, first.model_config, first.postprocess, first.eval_size, run=first.run,
                      train_config=first.train_config, soup_of=[str(p) for p in paths])
    return soup.save(out)
