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


def expand_checkpoints(patterns: str | list[str]) -> list[Path]:
    """Checkpoint paths from paths or glob patterns (relative to the project root), in order, each pattern sorted.

    A pattern that matches nothing is an error naming it, not an empty ensemble.
    """
    found: list[Path] = []
    for pattern in [patterns] if isinstance(patterns, str) else patterns:
        path = project_path(pattern)
        matches = sorted(path.parent.glob(path.name)) if any(c in path.name for c in "*?[") else [path]
        matches = [m for m in matches if m.is_file()]
        if not matches:
            raise FileNotFoundError(f"no checkpoint matches {pattern!r}")
        found.extend(m for m in matches if m not in found)
    return found
