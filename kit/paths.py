"""Where things live: the project root, outputs, and the data folder a notebook asks for."""

from __future__ import annotations

from pathlib import Path

from kit.data import available_splits
from kit.synth import ensure_dataset

ROOT = Path(__file__).resolve().parent.parent
OUTPUTS = ROOT / "outputs"
SYNTH_DIR = ROOT / "data" / "synth"


def project_path(path: Path | str) -> Path:
    """``path`` itself if absolute, else relative to the project root (so notebooks run from any cwd)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else ROOT / path


def resolve_data_dir(data_dir: Path | str) -> Path:
    """The dataset folder to use: the synthetic default is generated on first use; others must exist."""
    path = project_path(data_dir)
    if path == SYNTH_DIR:
        return ensure_dataset(path)
    if not available_splits(path):
        raise FileNotFoundError(
            f"{path}: no dataset here (expected jsons/train.json, val.json or test.json and images/<split>/)"
        )
    return path
