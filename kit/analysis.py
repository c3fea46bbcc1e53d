"""Error analysis from CLEval's matching: per-image scores, an error taxonomy, and the reports' diagnosis.

Everything here reads a :class:`kit.metric.DatasetResult` (its per-image matching) with the
GT records and the predicted polygons; notebook 03 only plots these tables.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from kit.data import ImageRecord
from kit.eda import word_table
from kit.metric import DatasetResult, ImageResult

#: Precision-recall gap (points of H-mean scale, i.e. x100) under which a model is balanced.
HEALTHY_GAP = 1.0
#: Gap over which the diagnosis flags an imbalance.
FLAG_GAP = 2.0


def gt_status(result: ImageResult, n_gt: int) -> list[str]:
    """Each GT word's fate: ``missed``, ``split`` (several detections), ``merged`` (shares one) or ``matched``."""
    split, merged = set(result.split), set(result.merged)
    matched = {g for gts, _ in result.matches for g in gts}
    merged_gts = {g for gts, dets in result.matches for g in gts if merged.intersection(dets)}
    return ["split" if g in split else "merged" if g in merged_gts else "matched" if g in matched else "missed"
            for g in range(n_gt)]


def per_image_table(result: DatasetResult, records: Sequence[ImageRecord]) -> pd.DataFrame:
    """One row per image: P/R/H, GT and predicted counts, misses, false positives, splits, merges."""
    rows = []
    for record in records:
        r = result.per_image[record.name]
        rows.append({"image": record.name, "precision": r.precision, "recall": r.recall, "hmean": r.hmean,
                     "gt": len(record.words), "missed": len(r.missed), "false_positives": len(r.false_positives),
                     "split": len(r.split), "merged": len(r.merged), "char_fp": r.num_char_fp})
    return pd.DataFrame(rows).sort_values("hmean").reset_index(drop=True)


def gt_error_table(result: DatasetResult, records: Sequence[ImageRecord]) -> pd.DataFrame:
    """One row per GT word: its geometry (see :func:`kit.eda.word_table`) and its status."""
    table = word_table(records)
    statuses = []
    for record in records:
        statuses += gt_status(result.per_image[record.name], len(record.words))
    table["status"] = statuses
    return table


def false_positive_table(result: DatasetResult, predictions: Mapping[str, Sequence[np.ndarray]],
                         records: Sequence[ImageRecord]) -> pd.DataFrame:
    """One row per unmatched detection: image, index, size and normalised centre."""
    rows = []
    for record in records:
        polygons = predictions.get(record.name, [])
        for d in result.per_image[record.name].false_positives:
            p = np.asarray(polygons[d], float)
            w, h = np.ptp(p[:, 0]), np.ptp(p[:, 1])
            rows.append({"image": record.name, "detection": d, "width": w, "height": h,
                         "cx": p[:, 0].mean() / record.width, "cy": p[:, 1].mean() / record.height})
    return pd.DataFrame(rows, columns=["image", "detection", "width", "height", "cx", "cy"])


def taxonomy(result: DatasetResult) -> dict[str, int]:
    """Totals over the dataset: GT words missed, split, merged; detections that are false positives."""
    per = result.per_image.values()
    return {"missed": sum(len(r.missed) for r in per), "false_positives": sum(len(r.false_positives) for r in per),
            "split": sum(len(r.split) for r in per), "merged": sum(len(r.merged) for r in per)}


def miss_rate_by(table: pd.DataFrame, column: str, bins: int | Sequence[float] = 6) -> pd.DataFrame:
    """Fraction of GT words missed per bin of ``column`` (e.g. height, aspect, cy), with counts."""
    binned = pd.cut(table[column], bins=bins) if not isinstance(bins, int) else pd.qcut(
        table[column], q=bins, duplicates="drop")
    grouped = table.assign(bin=binned, missed=table["status"] == "missed").groupby("bin", observed=True)
    rates = grouped.agg(words=("missed", "size"), miss_rate=("missed", "mean")).reset_index()
    rates["label"] = [f"{b.left:.3g}-{b.right:.3g}" for b in rates["bin"]]
    return rates


def diagnose(precision: float, recall: float, test_hmean: float | None = None, val_hmean: float | None = None,
             best_epoch: int | None = None, last_epoch: int | None = None) -> list[str]:
    """The reports' checklist, as sentences: P-R balance, val -> test gap, best vs last epoch."""
    notes = []
    gap = 100 * (precision - recall)
    if abs(gap) < HEALTHY_GAP:
        notes.append(f"P-R gap {gap:+.2f} pts: balanced (healthy under {HEALTHY_GAP:.0f} pt).")
    elif abs(gap) <= FLAG_GAP:
        notes.append(f"P-R gap {gap:+.2f} pts: slightly unbalanced; a box_thresh / thresh search may even it out.")
    elif gap > 0:
        notes.append(f"P-R gap {gap:+.2f} pts: high precision / low recall -> likely over-regularized or "
                     "thresholds too strict: lower weight decay, lower box_thresh / thresh, or unclip more.")
    else:
        notes.append(f"P-R gap {gap:+.2f} pts: high recall / low precision -> false positives or merged words: "
                     "raise box_thresh, or more regularization / augmentation.")
    if test_hmean is not None and val_hmean is not None:
        delta = 100 * (test_hmean - val_hmean)
        sign = "generalizes (test above val)" if delta >= 0 else "drops on test: validation may be optimistic"
        notes.append(f"val -> test gap {delta:+.2f} pts: {sign}.")
    if best_epoch is not None and last_epoch is not None:
        if best_epoch < last_epoch:
            notes.append(f"best epoch {best_epoch} < last epoch {last_epoch}: trained past the peak; "
                         "early stopping or fewer epochs saves time, a soup of the epochs near the peak may help.")
        else:
            notes.append(f"best epoch is the last ({last_epoch}): still improving, more epochs may help.")
    return notes
