"""What the training tests share."""

from __future__ import annotations

from pathlib import Path

from kit.training.config import TrainConfig, resolve_config


def tiny(synth_dir: Path, tmp_path: Path, **overrides) -> TrainConfig:
    """A run that takes seconds on a CPU."""
    settings = dict(data_dir=str(synth_dir), epochs=3, batch_size=2, max_train_images=4, max_val_images=2,
                    schedule=[[0, 128], [2, 160]], num_workers=0, output_dir=str(tmp_path), lr=1e-3)
    return resolve_config("smoke", **{**settings, **overrides})
