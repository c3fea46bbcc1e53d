"""Where things live: the project root, outputs, the default data folders. Imports nothing of the kit."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUTS = ROOT / "outputs"
SYNTH_DIR = ROOT / "data" / "synth"
#: Where the notebooks look for the competition data by default.
COMPETITION_DIR = ROOT / "data" / "receipts"
#: Notebook 04's choice of predictor and postprocess settings, in its output folder; notebook 05 reads it.
CHOICE_FILE = "choice.json"


def project_path(path: Path | str) -> Path:
    """``path`` itself if absolute, else relative to the project root (so notebooks run from any cwd)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else ROOT / path
