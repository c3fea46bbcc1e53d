"""Where things live: the project root, outputs, and the data folder a notebook asks for."""

from __future__ import annotations

from pathlib import Path

from kit.data import available_splits
from kit.synth import ensure_dataset

ROOT = Path(__file__).resolve().parent.parent
OUTPUTS = ROOT / "outputs"
SYNTH_DIR = ROOT / "data" / "synth"
#: Where the notebooks look for the competition data by default.
COMPETITION_DIR = ROOT / "data" / "receipts"


def project_path(path: Path | str) -> Path:
    """``path`` itself if absolute, else relative to the project root (so notebooks run from any cwd)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else ROOT / path


def resolve_data_dir(data_dir: Path | str, announce: bool = True) -> Path:
    """The dataset folder to use.

    The synthetic default is generated on first use. The default competition folder
    (``data/receipts``) falls back to the synthetic data, saying so, when it is absent;
    any other folder must hold a dataset.
    """
    path = project_path(data_dir)
    if path == COMPETITION_DIR and not available_splits(path):
        if announce:
            print(f"No competition data in {path}: using the synthetic receipts in {SYNTH_DIR} instead.")
        path = SYNTH_DIR
    if path == SYNTH_DIR:
        return ensure_dataset(path)
    if not available_splits(path):
        raise FileNotFoundError(
            f"{path}: no dataset here (expected jsons/train.json, val.json or test.json and images/<split>/)"
        )
    return path
