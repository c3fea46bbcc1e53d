"""Checkpoint averaging ("model soup"): the mean of several checkpoints' weights, itself a checkpoint.

Command line: ``python -m kit.soup "outputs/run/checkpoints/*.ckpt" --out outputs/soup.ckpt``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import torch

from kit.checkpoint import Checkpoint, expand_checkpoints
from kit.cli import run_cli


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kit.soup", description="Average checkpoints' weights into one.")
    parser.add_argument("checkpoints", nargs="+", help="checkpoint paths or glob patterns (one architecture)")
    parser.add_argument("--out", type=Path, required=True, help="the averaged checkpoint to write")
    args = parser.parse_args(argv)
    paths = expand_checkpoints(args.checkpoints)
    print(f"averaged {len(paths)} checkpoints into {average_checkpoints(paths, args.out)}")


if __name__ == "__main__":
    run_cli(main)
