"""Shared fixtures (a tiny synthetic dataset, SROIE when ../shared is present) and the suite's rules: tests under
``tests/integration/`` are slow by where they live; a test that trains must be marked slow (an unmarked one that
trains fails, saying so); every test has a time limit (pytest-timeout), shorter for the fast subset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kit.training.run as run_module
from kit.data.annotations import load_split, read_image
from kit.data.synth import generate_dataset
from kit.paths import ROOT

INTEGRATION = Path(__file__).parent / "integration"
#: Seconds a fast (unmarked) test may take; slow tests get pyproject.toml's ``timeout``.
FAST_TIMEOUT = 120
SROIE_DIR = ROOT.parent / "shared" / "data" / "sroie"
TINY_COUNTS = {"train": 6, "val": 3, "test": 2}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Integration tests (notebooks, browser, install, command lines) are slow; fast tests get the short limit."""
    for item in items:
        if INTEGRATION in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("slow") is None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(FAST_TIMEOUT))


@pytest.fixture(autouse=True)
def _training_is_slow(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail a test that trains (a run, or the trained ``tiny_checkpoint``) without the ``slow`` mark, so that the
    fast subset stays fast."""
    if request.node.get_closest_marker("slow") is not None:
        return
    if "tiny_checkpoint" in request.fixturenames:
        pytest.fail("this test uses tiny_checkpoint, which trains: mark it @pytest.mark.slow")

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - stands in for kit.training.run._run
        pytest.fail("this test trains (kit.training.run.train): mark it @pytest.mark.slow")

    monkeypatch.setattr(run_module, "_run", refuse)


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
