"""The leaderboard CSV format, written and read.

Format: header ``filename,polygons``; one row per test image in the test JSON's order;
``polygons`` holds polygons separated by ``|``, each as integer coordinates separated by
spaces (``x1 y1 x2 y2 ...``). The leaderboard scores at most 500 polygons per image, so the
writer keeps the 500 best-scoring. Coordinates are rounded to the nearest integer.

It lives with the annotation JSON (a file format, below the metric): the metric reads what the
writer writes (``kit.evaluation.cleval_files``), and ``kit.evaluation.leaderboard`` checks a CSV
as the leaderboard would.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from kit.data.annotations import ImageRecord, Word
from kit.errors import InputError
from kit.files import atomic_path

HEADER = ["filename", "polygons"]
MAX_POLYGONS = 500


def _score(word: Word) -> float:
    return float(word.extra.get("score", 0.0))


def polygon_text(points: np.ndarray) -> str:
    return " ".join(str(int(v)) for v in np.rint(np.asarray(points, np.float64)).astype(np.int64).ravel())


def csv_rows(path: Path) -> list[list[str]]:
    """Every row of a CSV. A row holds up to 500 polygons of many vertices each, far beyond the
    csv module's default 131,072-character field limit, which is lifted first."""
    csv.field_size_limit(sys.maxsize)
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def write_submission(predictions: Sequence[ImageRecord], order: Sequence[str], path: str | Path) -> Path:
    """Write the CSV for the images in ``order`` (the test JSON's); images without predictions get an empty row."""
    by_name = {r.name: r for r in predictions}
    unknown = sorted(set(by_name) - set(order))
    if unknown:
        raise InputError(f"{len(unknown)} predicted images are not test images, e.g. {unknown[0]!r}")
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for name in order:
            words = by_name[name].words if name in by_name else []
            best = sorted(words, key=_score, reverse=True)[:MAX_POLYGONS]
            writer.writerow([name, "|".join(polygon_text(w.points) for w in best)])
    return path


def read_submission(path: str | Path) -> list[ImageRecord]:
    """A CSV back into prediction records (no sizes: width and height are 0)."""
    records = []
    for name, text in csv_rows(Path(path))[1:]:
        polygons = [np.array(p.split(), np.float64).reshape(-1, 2) for p in text.split("|")] if text else []
        words = [Word(f"{i + 1:04d}", p) for i, p in enumerate(polygons)]
        records.append(ImageRecord(name, Path(name), 0, 0, words))
    return records
