"""What the benchmarks share: where SROIE's receipts are and one evaluation of a predictor on its val split; the
PaddleOCR recipe's variants and the combination issue 20 kept; zero-shot PP-OCR as a checkpoint.

A predictor is scored on all 100 val receipts twice: at its own postprocess settings, and at the
setting a threshold search picks on the first 50 *train* receipts (val never tunes anything).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kit.data.annotations import ImageRecord, load_split
from kit.evaluation.cleval import ImageResult
from kit.inference.predict import Predictor, evaluate_predictor
from kit.inference.threshold_search import best_setting, cache_maps, threshold_search
from kit.paths import OUTPUTS, ROOT
from kit.training.config import config_for
from kit.training.presets import PADDLE_RECIPE
from kit.training.run import zero_shot_checkpoint

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


#: PaddleOCR trains at lr 1e-3 for 64 images a step; linearly scaled to the preset's batch 4.
PADDLE_LR = PADDLE_RECIPE["lr"]
PRESET = "preset (ppocr_cpu_v1)"
VARIANTS: dict[str, dict[str, Any]] = {
    PRESET: {},
    "dice on the probability map": {"loss": {"prob_loss": "dice"}},
    "dice + focal on the probability map": {"loss": {"prob_loss": "dice_focal"}},
    "PaddleOCR lr, warm-up per step over 1 epoch": {"lr": PADDLE_LR, "eta_min": PADDLE_LR / 10, "warmup_epochs": 1,
                                                     "lr_interval": "step"},
    "EMA, decay warmed up (cap 0.999)": {"ema_decay": 0.999},
    "pretrained graph at lr x 0.1": {"pretrained_lr_scale": 0.1},
    "shrink ratio 0.4 -> 0.6": {"shrink_ratio_end": 0.6},
    # the export has no threshold head: the kit's is new, and its L1 and the binary map's dice train it
    "probability map alone (no threshold branch)": {"thresh_branch": False},
}


def combine(changes: list[dict[str, Any]]) -> dict[str, Any]:
    """One set of overrides from several (nested settings such as ``loss`` merge key by key)."""
    out: dict[str, Any] = {}
    for change in changes:
        for key, value in change.items():
            out[key] = {**out.get(key, {}), **value} if isinstance(value, dict) else value
    return out


def together(names: list[str]) -> tuple[str, dict[str, Any]]:
    """A combination of variants: its row name and its overrides."""
    return "together: " + "; ".join(names), combine([VARIANTS[n] for n in names])


#: ``ppocr_recipe_together.md``'s best combination (without the smaller lr on the pretrained graph).
RECIPE = ["dice on the probability map", "dice + focal on the probability map",
          "PaddleOCR lr, warm-up per step over 1 epoch", "EMA, decay warmed up (cap 0.999)",
          "probability map alone (no threshold branch)"]
FINE_TUNED_RUN = "bench-sroie-ppocr-ft"
ZERO_SHOT = OUTPUTS / "ppocr-zero-shot" / "checkpoints" / "zero-shot.ckpt"


def zero_shot() -> Path:
    """Zero-shot PP-OCR as a checkpoint (``python -m kit pretrained``'s), saved on first use."""
    if not ZERO_SHOT.is_file():
        zero_shot_checkpoint(config_for("ppocr_det")).save(ZERO_SHOT)
    return ZERO_SHOT
