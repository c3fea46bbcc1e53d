"""Checkpoint averaging ("model soup"): the mean of several checkpoints' weights, itself a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from kit.train import load_checkpoint


def average_checkpoints(paths: Sequence[str | Path], out: str | Path) -> Path:
    """Average the float weights of ``paths`` (same architecture) into ``out``; evaluate it like any checkpoint.

    Integer buffers (BatchNorm's ``num_batches_tracked``) come from the first checkpoint;
    configs and postprocess settings too. The training state is dropped: a soup is for inference.
    """
    if not paths:
        raise ValueError("give at least one checkpoint to average")
    states = [load_checkpoint(p) for p in paths]
    first = states[0]
    for path, state in zip(paths[1:], states[1:]):
        if state["model_config"] != first["model_config"]:
            raise ValueError(f"{path}: model {state['model_config']} differs from {paths[0]}: {first['model_config']}")
    averaged = {}
    for key, value in first["model"].items():
        if value.is_floating_point():
            averaged[key] = torch.stack([s["model"][key].double() for s in states]).mean(0).to(value.dtype)
        else:
            averaged[key] = value.clone()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": averaged, "model_config": first["model_config"], "postprocess": first["postprocess"],
                "eval_size": first["eval_size"], "train_config": first.get("train_config"),
                "soup_of": [str(p) for p in paths]}, out)
    return out
