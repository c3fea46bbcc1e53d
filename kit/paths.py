"""Where things live: the project root, outputs, the default data folders. Imports nothing of the kit.

The project root is found from the working folder, not from where the kit is installed, so that a
clone used in place, JupyterLab (whose kernels start in ``notebooks/``), papermill and a
non-editable ``pip install`` resolve ``outputs/``, ``data/`` and ``notebooks/`` alike:
``$KIT_PROJECT`` when set, else the nearest folder at or above the working folder whose
``pyproject.toml`` has a ``[tool.kit]`` table (this repository's does), else the working folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

#: The environment variable that names the project root outright.
PROJECT_ENV = "KIT_PROJECT"
#: What marks a project root: a ``[tool.kit]`` table in its ``pyproject.toml``.
MARKER = re.compile(r"^\[tool\.kit\]", re.M)


def find_root(start: Path | str | None = None) -> Path:
    """The project root seen from ``start`` (default: the working folder); see the module docstring."""
    if os.environ.get(PROJECT_ENV):
        return Path(os.environ[PROJECT_ENV]).expanduser().resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        config = folder / "pyproject.toml"
        if config.is_file() and MARKER.search(config.read_text(encoding="utf-8", errors="replace")):
            return folder
    return here


ROOT = find_root()
OUTPUTS = ROOT / "outputs"
SYNTH_DIR = ROOT / "data" / "synth"
#: The synthetic dataset's default split sizes.
SYNTH_COUNTS = {"train": 150, "val": 30, "test": 20}
#: Where the notebooks look for the competition data by default.
COMPETITION_DIR = ROOT / "data" / "receipts"
#: Notebook 04's choice of predictor and postprocess settings, in its output folder; notebook 05 reads it.
CHOICE_FILE = "choice.json"
#: A training run's best-epoch per-image val scores, in its run folder, for paired comparisons
#: (kit.evaluation.significance).
VAL_PER_IMAGE = "val_per_image.csv"


def project_path(path: Path | str) -> Path:
    """``path`` itself if absolute, else relative to the project root (so notebooks run from any cwd)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else ROOT / path


def portable_path(path: Path | str) -> str:
    """``path`` relative to the project root when it lies inside it (so a saved file travels with the
    project to another machine), else absolute."""
    path = project_path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


#: A checkpoint pattern's prefix naming the latest run: ``latest:best-*.ckpt`` is that glob in its ``checkpoints/``.
LATEST = "latest:"


def latest_run(outputs: Path | str = OUTPUTS) -> Path:
    """The run folder under ``outputs`` trained last: the one whose newest checkpoint was written last.

    Notebooks 03 and 04 default to it, so that a person running them after 02 analyses the run 02 just made,
    not every run there is.
    """
    folder = project_path(outputs)
    written: dict[Path, float] = {}
    for checkpoint in folder.glob("*/checkpoints/*.ckpt"):
        run = checkpoint.parent.parent
        written[run] = max(written.get(run, 0.0), checkpoint.stat().st_mtime)
    if not written:
        raise FileNotFoundError(f"no training run under {folder} yet (none has checkpoints/*.ckpt): train one with "
                                "notebook 02 or python -m kit train, or give checkpoint paths")
    return max(written, key=lambda run: (written[run], run.name))


def expand_checkpoints(patterns: str | Path | Sequence[str | Path], outputs: Path | str = OUTPUTS) -> list[Path]:
    """Checkpoint paths from paths or glob patterns (relative to the project root), in order, each pattern sorted.

    ``latest:PATTERN`` is ``PATTERN`` in the checkpoints folder of :func:`latest_run` under ``outputs``.
    A pattern that matches nothing is an error naming it, not an empty ensemble.
    """
    found: list[Path] = []
    for pattern in [patterns] if isinstance(patterns, (str, Path)) else patterns:
        text = str(pattern)
        path = (latest_run(outputs) / "checkpoints" / text[len(LATEST):] if text.startswith(LATEST)
                else project_path(pattern))
        matches = sorted(path.parent.glob(path.name)) if any(c in path.name for c in "*?[") else [path]
        matches = [m for m in matches if m.is_file()]
        if not matches:
            raise FileNotFoundError(f"no checkpoint matches {pattern!r}" + (f" ({path})" if path != project_path(
                pattern) else ""))
        found.extend(m for m in matches if m not in found)
    return found
