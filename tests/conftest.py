"""Shared fixtures: a tiny synthetic dataset, and SROIE when ../shared is present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kit.data.annotations import load_split, read_image
from kit.data.synth import generate_dataset
from kit.paths import ROOT

SROIE_DIR = ROOT.parent / "shared" / "data" / "sroie"
TINY_COUNTS = {"train": 6, "val": 3, "test": 2}


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic dataset in the competition layout, made once per test session."""
    return generate_dataset(tmp_path_factory.mktemp("synth"), TINY_COUNTS, seed=0, workers=2)


@pytest.fixture(scope="session")
def sroie_dir() -> Path:
    """The real SROIE receipts in the competition layout; tests using it skip when it is absent."""
    if not (SROIE_DIR / "jsons" / "train.json").is_file():
        pytest.skip(f"{SROIE_DIR} not present")
    return SROIE_DIR


@pytest.fixture(scope="session")
def tiny_checkpoint(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The best checkpoint of a one-epoch CPU run on the tiny synthetic data."""
    from kit.training.config import resolve_config
    from kit.training.run import train

    out = tmp_path_factory.mktemp("runs")
    config = resolve_config("smoke", data_dir=str(synth_dir), epochs=1, batch_size=2, max_train_images=2,
                            max_val_images=2, schedule=[[0, 160]], num_workers=0, output_dir=str(out),
                            run_name="tiny", postprocess={"thresh": 0.45, "box_thresh": 0.5})
    return train(config, progress=False).best_checkpoint


def receipt_images(synth_dir: Path, count: int = 2) -> list[np.ndarray]:
    """Real receipts (SROIE) when present, else the synthetic ones."""
    data = SROIE_DIR if (SROIE_DIR / "jsons" / "val.json").is_file() else synth_dir
    return [read_image(r.path) for r in load_split(data, "val")[0][:count]]
