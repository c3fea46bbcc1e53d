"""Dataset statistics for exploration (notebook 01): tables the notebook plots."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import cv2
import numpy as np
import pandas as pd

from kit.data.annotations import ImageRecord, available_splits, load_split


def split_summary(data_dir: Path | str) -> pd.DataFrame:
    """Images, words and words per image for every split present under ``data_dir``."""
    rows = []
    for split in available_splits(data_dir):
        records, report = load_split(data_dir, split)
        counts = np.array([len(r.words) for r in records])
        rows.append({"split": split, "images": len(records), "words": int(counts.sum()),
                     "words_per_image_mean": float(counts.mean()) if len(counts) else 0.0,
                     "words_per_image_median": float(np.median(counts)) if len(counts) else 0.0,
                     "excluded_lt4_points": len(report.too_few_points), "degenerate": len(report.degenerate),
                     "outside_image": len(report.outside_image)})
    return pd.DataFrame(rows)


def image_table(records: Iterable[ImageRecord]) -> pd.DataFrame:
    """One row per image: size, aspect, long side and word count."""
    return pd.DataFrame(
        [{"image": r.name, "width": r.width, "height": r.height, "aspect": r.width / r.height,
          "long_side": max(r.width, r.height), "words": len(r.words)} for r in records]
    )


def word_table(records: Iterable[ImageRecord]) -> pd.DataFrame:
    """One row per word: size of its minimum-area rectangle, angle, area, centre and orientation.

    ``width`` is the rectangle side nearer the horizontal, so vertical text has aspect < 1;
    ``angle`` is the direction of the polygon's first edge (TL -> TR) in degrees, 0 for
    upright text and +-90 for vertical; centres are normalised to [0, 1] of the image.
    """
    rows = []
    for r in records:
        for w in r.words:
            pts = w.points.astype(np.float32)
            (cx, cy), (a, b), rect_angle = cv2.minAreaRect(pts)
            horizontal_first = abs((rect_angle + 90) % 180 - 90) <= 45  # side a within 45 deg of the x-axis
            width, height = (a, b) if horizontal_first else (b, a)
            dx, dy = pts[1] - pts[0]
            rows.append({
                "image": r.name, "word": w.id, "points": len(pts), "width": float(width), "height": float(height),
                "aspect": float(width / height) if height > 0 else np.inf,
                "area": float(cv2.contourArea(pts)), "angle": float(np.degrees(np.arctan2(dy, dx))),
                "cx": float(cx / r.width), "cy": float(cy / r.height),
                "orientation": w.extra.get("orientation", "Horizontal" if width >= height else "Vertical"),
                "language": _language(w.extra.get("language")), "degenerate": w.degenerate,
            })
    return pd.DataFrame(rows)


#: ``word_table``'s language for a word whose annotation gives none (missing, null or empty).
NO_LANGUAGE = "none given"


def _language(value: object) -> str:
    """The annotation's ``language`` (a list such as ``["ko"]``, or a string) as one label."""
    if isinstance(value, (list, tuple)):
        return "+".join(map(str, value)) or NO_LANGUAGE
    return str(value) if value else NO_LANGUAGE


def language_mix(words: pd.DataFrame) -> pd.DataFrame:
    """Words per language: count, share of all words, and share of the words whose language is given (the
    competition's train set: ko 90.5%, en 9.5%)."""
    counts = words["language"].value_counts()
    given = counts.drop(NO_LANGUAGE, errors="ignore").sum()
    table = pd.DataFrame({"words": counts, "share": counts / max(counts.sum(), 1)})
    table["share_of_given"] = [counts[k] / given if k != NO_LANGUAGE and given else np.nan for k in counts.index]
    return table.rename_axis("language").reset_index()


def text_heatmap(records: Iterable[ImageRecord], bins: int = 64) -> np.ndarray:
    """Fraction of images with text at each cell of a ``bins`` x ``bins`` grid over normalised coordinates."""
    total = np.zeros((bins, bins), np.float64)
    n = 0
    for r in records:
        mask = np.zeros((bins, bins), np.uint8)
        scale = np.array([bins / r.width, bins / r.height])
        polys = [np.round(w.points * scale).astype(np.int32) for w in r.words if not w.degenerate]
        if polys:
            cv2.fillPoly(mask, polys, 1)
        total += mask
        n += 1
    return total / max(n, 1)
