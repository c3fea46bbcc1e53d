"""The leaderboard's checks of a submission CSV (the format: ``kit.data.submission``), and the CSV written only
when it passes them.

``python -m kit submit PRED.json OUT.csv --test-json TEST.json`` writes predictions (the competition schema, e.g.
from ``python -m kit predict``) as the leaderboard CSV in the test JSON's order, checked before it replaces
anything. ``python -m kit submit --check sub.csv --images DIR`` (or ``--test-json``) lists every
problem a leaderboard would reject (exit status 1 if there is any) and warns, per image,
about what it would accept but score badly: polygons without area or with all points on
one line (the metric counts each as an unmatched detection worth up to 100 false
characters) and polygons beyond the 500 it scores.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from kit.data.annotations import ImageRecord, image_records, read_annotations
from kit.data.submission import HEADER, MAX_POLYGONS, csv_rows, write_submission
from kit.errors import InputError
from kit.evaluation.cleval import Boxes, aspect_ratio
from kit.files import atomic_path

#: How far outside the image a coordinate may lie before the validator calls it wrong (fraction of the side).
OUTSIDE_MARGIN = 0.1


@dataclass
class Problem:
    """One reason the leaderboard would reject (``fatal``) or silently mis-score (a warning) a submission."""

    row: int | None
    image: str | None
    message: str
    fatal: bool = True

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row is not None else "file"
        kind = "" if self.fatal else "warning: "
        return f"{kind}{where}{f' ({self.image})' if self.image else ''}: {self.message}"


def degenerate(coords: np.ndarray) -> bool:
    """True when the metric cannot use polygon ``coords`` (x1 y1 x2 y2 ...): no area, or no convex hull."""
    points = coords.reshape(-1, 2).astype(np.float64)
    return Boxes.prepare([points]).areas[0] == 0 or aspect_ratio(points) == 0


def check_submission(path: str | Path, images: Sequence[ImageRecord]) -> list[Problem]:
    """Every problem in the CSV at ``path`` against the test ``images`` (their names and sizes)."""
    path = Path(path)
    if not path.is_file():
        return [Problem(None, None, f"{path} not found")]
    sizes = {r.name: (r.width, r.height) for r in images}
    problems: list[Problem] = []
    rows = csv_rows(path)
    if not rows or rows[0] != HEADER:
        got = ",".join(rows[0]) if rows else "nothing"
        return [Problem(None, None, f"header must be {','.join(HEADER)}, got {got}")]
    seen: set[str] = set()
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != 2:
            problems.append(Problem(number, row[0] if row else None, f"expected 2 columns, got {len(row)}"))
            continue
        name, text = row
        if name in seen:
            problems.append(Problem(number, name, "image listed twice"))
        seen.add(name)
        if name not in sizes:
            problems.append(Problem(number, name, "not a test image"))
            continue
        width, height = sizes[name]
        polygons = [p for p in text.split("|")] if text.strip() else []
        if len(polygons) > MAX_POLYGONS:
            problems.append(Problem(number, name, f"{len(polygons)} polygons; only the first {MAX_POLYGONS} are scored",
                                    fatal=False))
        flat: list[int] = []
        for k, polygon in enumerate(polygons, start=1):
            values = polygon.split()
            label = f"polygon {k}"
            try:
                coords = np.array([int(v) for v in values], np.int64)
            except ValueError:
                bad = next(v for v in values if not v.lstrip("-").isdigit())
                problems.append(Problem(number, name, f"{label}: non-integer value {bad!r}"))
                continue
            if len(coords) % 2:
                problems.append(Problem(number, name, f"{label}: odd number of coordinates ({len(coords)})"))
                continue
            if len(coords) < 8:
                problems.append(Problem(number, name, f"{label}: {len(coords) // 2} points, at least 4 needed"))
                continue
            xs, ys = coords[0::2], coords[1::2]
            mx, my = OUTSIDE_MARGIN * width, OUTSIDE_MARGIN * height
            if xs.min() < -mx or ys.min() < -my or xs.max() > width + mx or ys.max() > height + my:
                problems.append(Problem(number, name, f"{label}: coordinates far outside the {width}x{height} image"))
            if degenerate(coords):
                flat.append(k)
        if flat:
            problems.append(Problem(number, name, f"{len(flat)} polygon(s) without area or with collinear points "
                                    f"(e.g. polygon {flat[0]}): each scores as an unmatched detection, up to 100 "
                                    "false characters", fatal=False))
    missing = [n for n in sizes if n not in seen]
    if missing:
        problems.append(Problem(None, None, f"{len(missing)} test images missing, e.g. {missing[0]!r}"))
    return problems


def write_checked_submission(predictions: Sequence[ImageRecord], test_images: Sequence[ImageRecord],
                             path: str | Path) -> tuple[Path, list[Problem]]:
    """The leaderboard CSV of ``predictions`` in the test JSON's order, written only if it passes every check.

    The CSV is written and checked beside ``path``, then renamed over it: a file already there (an earlier
    submission) is replaced in one step by a CSV the leaderboard accepts, or left as it was with an error
    listing the problems. Warnings (e.g. polygons without area) come back with the path.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        write_submission(predictions, [r.name for r in test_images], tmp)
        problems = check_submission(tmp, test_images)
        fatal = [p for p in problems if p.fatal]
        if fatal:
            listed = "; ".join(str(p) for p in fatal[:5]) + (f"; ... {len(fatal) - 5} more" if len(fatal) > 5 else "")
            raise InputError(f"{path}: not written, the leaderboard would reject it ({len(fatal)} problem(s)): "
                             f"{listed}")
    return path, problems


def command(args: argparse.Namespace) -> None:
    """``python -m kit submit``: ``PRED.json OUT.csv --test-json TEST.json`` writes the checked CSV;
    ``--check CSV`` prints every problem of an existing one, exit status 1 if the leaderboard would reject it."""
    images = image_records(args.images) if args.images else read_annotations(args.test_json)[0]
    if args.predictions:
        predictions = read_annotations(args.predictions)[0]
        path, problems = write_checked_submission(predictions, images, args.out)
        for problem in problems:
            print(problem)
        print(f"{path}: {sum(len(r.words) for r in predictions)} polygons for {len(images)} test images, "
              f"{len(problems)} warning(s)")
        return
    problems = check_submission(args.check, images)
    for problem in problems:
        print(problem)
    fatal = sum(p.fatal for p in problems)
    print(f"{args.check}: {fatal} problem(s), {len(problems) - fatal} warning(s) for {len(images)} test images")
    sys.exit(1 if fatal else 0)
