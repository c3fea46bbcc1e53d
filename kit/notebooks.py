"""Headless notebook runs with papermill: the kit's main job and the notebooks' tests use this."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import papermill

from kit.paths import OUTPUTS, ROOT

NOTEBOOK_DIR = ROOT / "notebooks"
#: The main job on the embedded default data: notebook and its parameters, in order.
MAIN_JOB: list[tuple[str, dict[str, Any]]] = [
    ("01_eda.ipynb", {"data_dir": "data/synth", "split": "train"}),
    ("02_train.ipynb", {"arch": "resnet18", "preset": "smoke", "data_dir": "data/synth", "run_name": "demo-smoke"}),
    ("04_ensemble.ipynb", {"checkpoints": ["outputs/demo-smoke/checkpoints/best-*.ckpt",
                                           "outputs/demo-smoke/checkpoints/last.ckpt"],
                           "data_dir": "data/synth", "max_images": 10, "output_dir": "outputs/ensemble"}),
    ("05_submission.ipynb", {"checkpoints": ["outputs/demo-smoke/checkpoints/best-*.ckpt"], "data_dir": "data/synth",
                             "out_csv": "outputs/submission.csv"}),
]


def run_notebook(name: str, out_dir: Path | str, parameters: dict[str, Any] | None = None,
                 progress: bool = True) -> Path:
    """Execute ``notebooks/<name>`` with ``parameters`` into ``out_dir/<name>``; cwd is the project root."""
    out_path = Path(out_dir) / name
    out_path.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(NOTEBOOK_DIR / name), str(out_path), parameters=parameters or {},
                               cwd=str(ROOT), progress_bar=progress, kernel_name="python3")
    return out_path


def run_main_job(out_dir: Path | str = OUTPUTS / "notebooks") -> list[Path]:
    """Run every notebook of :data:`MAIN_JOB` in order; stops at the first failure (papermill raises)."""
    return [run_notebook(name, out_dir, params) for name, params in MAIN_JOB]
