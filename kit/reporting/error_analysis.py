"""Error analysis from CLEval's matching: per-image scores, an error taxonomy, and the reports' diagnosis.

:func:`analyse` predicts (a checkpoint or an ensemble, optionally with TTA) or reads a
predictions JSON and scores it; everything else reads its :class:`kit.evaluation.cleval.DatasetResult`
(the per-image matching) with the GT records and the predicted polygons. Notebook 03 and
``bench/error_analysis_sroie.py`` call these and only plot or print the tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from kit.data.annotations import ImageRecord
from kit.data.eda import word_table
from kit.errors import InputError
from kit.evaluation.cleval import DatasetResult, ImageResult, evaluate
from kit.evaluation.cleval_files import polygons_by_image
from kit.inference.candidates import resolve_choice
from kit.inference.threshold_search import CachedMap, cache_maps, polygons_from_maps
from kit.model.checkpoint import Checkpoint
from kit.model.postprocess import PostprocessConfig
from kit.paths import project_path
from kit.reporting.compare import SCORES_CSV

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
    """One row per GT word: its geometry (see :func:`kit.data.eda.word_table`) and its status."""
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


@dataclass
class ErrorAnalysis:
    """What notebook 03 looks at: the scored predictions and, for checkpoints, the cached maps and settings."""

    records: list[ImageRecord]
    predictions: dict[str, list[np.ndarray]]
    result: DatasetResult
    maps: list[CachedMap] | None = None
    config: PostprocessConfig | None = None
    checkpoint: Path | None = None

    def diagnosis(self, scores_csv: Path = SCORES_CSV) -> list[str]:
        """:func:`diagnose` with the run's whole history and its recorded test H-mean (``kit.reporting.compare``),
        if any."""
        history = run_history(self.checkpoint) if self.checkpoint else []
        best = max(history, key=lambda row: row["val_hmean"]) if history else None
        test_h = None
        if self.checkpoint and scores_csv.is_file():
            scores = pd.read_csv(scores_csv)
            found = scores.loc[scores["run"] == self.checkpoint.parent.parent.name, "test_hmean"].dropna()
            test_h = float(found.iloc[0]) if len(found) else None
        return diagnose(self.result.precision, self.result.recall, test_hmean=test_h, val_hmean=self.result.hmean,
                        best_epoch=int(best["epoch"]) if best else None,
                        last_epoch=int(history[-1]["epoch"]) if history else None)


def analyse(records: Sequence[ImageRecord], checkpoints: Sequence[str | Path] | str | None = None,
            predictions_json: str | Path | None = None, weights: Sequence[float] | None = None, tta: str = "",
            progress: bool = True, backend: str = "auto", **postprocess: float | None) -> ErrorAnalysis:
    """Score ``records`` against a predictions JSON, or against checkpoints predicted here (maps cached).

    ``postprocess`` settings given (``thresh=0.25``...) override the first checkpoint's.
    """
    gt = {r.name: r.polygons() for r in records}
    if predictions_json:
        predictions = polygons_by_image(project_path(predictions_json))
        return ErrorAnalysis(list(records), predictions, evaluate(gt, predictions))
    if not checkpoints:
        raise InputError("give checkpoints or a predictions JSON to analyse")
    choice = resolve_choice(None, checkpoints, weights, tta, backend, **postprocess)
    predictor = choice.predictor()
    maps = cache_maps(predictor, records, progress=progress)
    predictions = polygons_from_maps(maps, predictor.config)
    return ErrorAnalysis(list(records), predictions, evaluate(gt, predictions), maps, predictor.config,
                         Path(choice.checkpoints[0]))


def run_history(checkpoint: Path | str) -> list[dict[str, Any]]:
    """Every epoch of the run a checkpoint came from: its run's ``metrics.csv`` when present (a best
    checkpoint holds only the epochs up to itself), else the checkpoint's own history."""
    metrics = Path(checkpoint).parent.parent / "metrics.csv"
    if metrics.is_file():
        return pd.read_csv(metrics).to_dict("records")
    return Checkpoint.load(checkpoint).history
