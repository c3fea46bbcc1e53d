"""What the SROIE benchmarks share: where the receipts are, and one evaluation of a predictor on val.

A predictor is scored on all 100 val receipts twice: at its own postprocess settings, and at the
setting a threshold search picks on the first 50 *train* receipts (val never tunes anything).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from kit.data.annotations import ImageRecord, load_split
from kit.evaluation.cleval import ImageResult
from kit.inference.predict import Predictor, evaluate_predictor
from kit.inference.threshold_search import best_setting, cache_maps, threshold_search
from kit.paths import ROOT

SROIE = ROOT.parent / "shared" / "data" / "sroie"
#: The search grid: thresh x box_thresh x unclip_ratio.
GRID = ([0.2, 0.3], [0.4, 0.5, 0.6], [1.4, 1.6, 1.8, 2.0])
#: Train receipts the postprocess is searched on.
TUNE_IMAGES = 50
#: The columns of a candidates table (notebook 04's comparison) in the results files.
COLUMNS = ["candidate", "precision", "recall", "hmean", "split_words", "merging_boxes", "dH", "dH_low95", "dH_high95",
           "p_better", "verdict", "ms_per_image"]


def sroie_or_exit(root: Path = SROIE) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """(val, the train receipts to tune on); exits naming the folder when the receipts are absent."""
    if not (root / "jsons" / "train.json").is_file():
        sys.exit(f"{root} not found")
    return load_split(root, "val")[0], load_split(root, "train")[0][:TUNE_IMAGES]


@dataclass
class Evaluation:
    """A predictor's val scores at its own setting and at the setting searched on train receipts."""

    preset: dict
    setting: dict
    searched: dict
    per_image: dict[str, ImageResult] = field(default_factory=dict)  # at the searched setting
    preset_per_image: dict[str, ImageResult] = field(default_factory=dict)  # at the predictor's own setting


def evaluate_both(predictor: Predictor, tune: list[ImageRecord], val: list[ImageRecord],
                  grid: tuple[list[float], list[float], list[float]] = GRID) -> Evaluation:
    """Val scores at the predictor's settings, the setting searched on ``tune`` over ``grid``, and val scores
    at it."""
    preset_per_image: dict[str, ImageResult] = {}
    preset = evaluate_predictor(predictor, val, progress=False, per_image=preset_per_image)
    setting = best_setting(threshold_search(cache_maps(predictor, tune, progress=False), *grid, workers=2,
                                            progress=False))
    predictor.config = replace(predictor.config, **setting)
    per_image: dict[str, ImageResult] = {}
    return Evaluation(preset, setting, evaluate_predictor(predictor, val, progress=False, per_image=per_image),
                      per_image, preset_per_image)


def row(name: str, scores: dict[str, float]) -> str:
    """A results table row: P, R, H, split GT words, merging boxes, ms/image."""
    return (f"| {name} | {scores['precision']:.4f} | {scores['recall']:.4f} | {scores['hmean']:.4f} "
            f"| {scores['split_words']} | {scores['merging_boxes']} | {scores['ms_per_image']:.0f} |")
