"""Checkpoint averaging ("model soup"): the mean of several checkpoints' weights, itself a checkpoint.

Command line: ``python -m kit soup "outputs/run/checkpoints/*.ckpt" --out outputs/soup.ckpt``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import torch

from kit.errors import InputError
from kit.model.checkpoint import Checkpoint


def average_checkpoints(paths: Sequence[str | Path], out: str | Path) -> Path:
    """Average the float weights of ``paths`` (same model config) into ``out``; evaluate it like any checkpoint."""
    if not paths:
        raise InputError("give at least one checkpoint to average")
    members = [Checkpoint.load(p) for p in paths]
    for path, member in zip(paths[1:], members[1:]):
        if not soupable([members[0], member]):
            raise InputError(f"{path}: model {member.model_config} differs from {paths[0]}: {members[0].model_config}")
    return soup(members, paths).save(out)


def soupable(members: Sequence[Checkpoint]) -> bool:
    """True when the weights can be averaged: every member has the same model config."""
    return all(m.model_config == members[0].model_config for m in members)


def soup(members: Sequence[Checkpoint], sources: Sequence[str | Path]) -> Checkpoint:
    """The weight average of ``members`` (loaded from ``sources``), as a checkpoint for inference.

    Integer buffers (BatchNorm's ``num_batches_tracked``) come from the first member; configs
    and postprocess settings too. The training state is dropped.
    """
    first = members[0]
    averaged = {}
    for key, value in first.weights.items():
        if value.is_floating_point():
            averaged[key] = torch.stack([m.weights[key].double() for m in members]).mean(0).to(value.dtype)
        else:
            averaged[key] = value.clone()
    return Checkpoint(averaged, first.model_config, first.postprocess, first.eval_size, run=first.run,
                      train_config=first.train_config, soup_of=[str(p) for p in sources],
                      pad_multiple=first.pad_multiple)


def command(args: argparse.Namespace) -> None:
    """``python -m kit soup``: the averaged checkpoint written to ``--out``."""
    print(f"averaged {len(args.checkpoints)} checkpoints into {average_checkpoints(args.checkpoints, args.out)}")
