"""Every notebook is committed clean (no outputs, one parameters cell) and runs under papermill."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from kit.notebooks import NOTEBOOK_DIR, run_notebook

NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))


def tiny_parameters(synth_dir: Path, out: Path, checkpoint: Path) -> dict[str, dict]:
    """Parameters that make each notebook run in seconds on a CPU."""
    return {
        "01_eda.ipynb": {"data_dir": str(synth_dir), "split": "train", "n_samples": 2},
        "02_train.ipynb": {"arch": "resnet18", "preset": "smoke", "data_dir": str(synth_dir), "epochs": 2,
                           "max_train_images": 2, "max_val_images": 1, "schedule": [[0, 128], [1, 160]],
                           "num_workers": 0, "output_dir": str(out / "runs"), "n_examples": 1},
        "03_error_analysis.ipynb": {"checkpoint": str(checkpoint), "data_dir": str(synth_dir), "max_images": 2,
                                    "n_gallery": 2, "box_thresholds": [0.5, 0.6]},
        "04_ensemble.ipynb": {"checkpoints": [str(checkpoint), str(checkpoint)], "data_dir": str(synth_dir),
                              "max_images": 2, "thresholds": [0.45, 0.5], "box_thresholds": [0.5, 0.55],
                              "unclip_ratios": [2.0], "search_workers": 1, "output_dir": str(out / "ensemble")},
        "05_submission.ipynb": {"checkpoints": [str(checkpoint)], "tta": "hflip", "data_dir": str(synth_dir),
                                "out_csv": str(out / "submission.csv"), "n_show": 1},
    }


def test_expected_notebooks_exist() -> None:
    assert {"01_eda.ipynb", "02_train.ipynb", "03_error_analysis.ipynb", "04_ensemble.ipynb",
            "05_submission.ipynb"} == set(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_without_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    dirty = [i for i, c in enumerate(code) if c.outputs or c.execution_count is not None]
    assert not dirty, f"{name}: code cells {dirty} carry outputs; strip them (jupyter nbconvert --clear-output)"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: {len(tagged)} cells tagged 'parameters', expected 1"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_runs_headless(name: str, synth_dir: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    params = tiny_parameters(synth_dir, tmp_path, tiny_checkpoint)
    assert name in params, f"{name}: add tiny CI parameters for it here"
    out = run_notebook(name, tmp_path, params[name], progress=False)
    executed = nbformat.read(out, as_version=4)
    assert any(c.get("outputs") for c in executed.cells if c.cell_type == "code")


def test_train_notebook_fine_tunes_the_pretrained_detector(synth_dir: Path, tmp_path: Path) -> None:
    """``-p arch ppocr_det``: the PP-OCR preset by default, tiny settings here."""
    params = {"arch": "ppocr_det", "data_dir": str(synth_dir), "epochs": 1, "max_train_images": 2,
              "max_val_images": 1, "batch_size": 2, "schedule": [[0, 256]], "num_workers": 0,
              "output_dir": str(tmp_path / "runs"), "run_name": "pp", "n_examples": 1}
    out = run_notebook("02_train.ipynb", tmp_path, params, progress=False)
    executed = nbformat.read(out, as_version=4)
    shown = "".join(o.get("data", {}).get("text/plain", "") for c in executed.cells if c.cell_type == "code"
                    for o in c.outputs)
    assert "ppocr_cpu" in shown and "ppocr_det" in shown
    assert list((tmp_path / "runs" / "pp" / "checkpoints").glob("best-epoch=00-*.ckpt"))
