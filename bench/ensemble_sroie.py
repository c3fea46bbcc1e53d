"""Notebook 04 on real receipts: the lite DBNet, zero-shot PP-OCR, their hybrid with TTA, the search on train receipts.

Run from the project root after ``python -m bench.train_sroie``: ``python -m bench.ensemble_sroie``.
Saves zero-shot PP-OCR as a checkpoint (``python -m kit pretrained``'s function) so that notebook 04
treats it like a trained one, then executes ``notebooks/04_ensemble.ipynb`` on SROIE val with
candidates: each single model, their map-averaging hybrid and the hybrid with TTA; every candidate
against zero-shot PP-OCR with the paired 95% interval; the postprocess searched on 50 *train*
receipts and the searched candidate scored on val, out of sample. Writes
``bench/results/ensemble_sroie.md``; the executed notebook is ``outputs/bench/04_ensemble_sroie.ipynb``.
"""

from __future__ import annotations

import time

import pandas as pd

from bench import markdown, write_results
from bench.sroie import SROIE, TUNE_IMAGES, sroie_or_exit
from kit.experiments.pipeline import run_notebook
from kit.paths import OUTPUTS, ROOT, expand_checkpoints
from kit.training.config import config_for
from kit.training.run import zero_shot_checkpoint

LITE = "outputs/bench-sroie-lite0/checkpoints/best-*.ckpt"
ZERO_SHOT = OUTPUTS / "ppocr-zero-shot" / "checkpoints" / "zero-shot.ckpt"
OUT = OUTPUTS / "bench" / "ensemble_sroie"
RESULTS = ROOT / "bench" / "results" / "ensemble_sroie.md"
TTA = "scale=0.8"
COLUMNS = ["candidate", "precision", "recall", "hmean", "split_words", "merging_boxes", "dH", "dH_low95", "dH_high95",
           "p_better", "verdict", "ms_per_image"]


def main() -> None:
    val = sroie_or_exit()[0]
    lite = expand_checkpoints(LITE)[0]
    if not ZERO_SHOT.is_file():
        zero_shot_checkpoint(config_for("ppocr_det")).save(ZERO_SHOT)
    start = time.perf_counter()
    executed = run_notebook("04_ensemble.ipynb", OUTPUTS / "bench", {
        "checkpoints": [str(lite), str(ZERO_SHOT)], "tta": TTA, "data_dir": str(SROIE), "split": "val",
        "baseline": "zero-shot", "search_split": "train", "search_max_images": TUNE_IMAGES,
        "unclip_ratios": [1.5, 1.8, 2.0], "output_dir": str(OUT)}, out_name="04_ensemble_sroie.ipynb")
    minutes = (time.perf_counter() - start) / 60
    table, held_out = pd.read_csv(OUT / "comparison.csv"), pd.read_csv(OUT / "searched_on_split.csv")
    search = pd.read_csv(OUT / "threshold_search.csv")
    lines = [
        "# Notebook 04 on SROIE: lite DBNet, zero-shot PP-OCR, their hybrid, TTA, the search on train receipts",
        "",
        f"- checkpoints: `{lite.relative_to(ROOT)}` (`python -m bench.train_sroie`) and zero-shot PP-OCRv6 saved as "
        f"`{ZERO_SHOT.relative_to(ROOT)}`; TTA views: {TTA}; executed notebook `{executed.relative_to(ROOT)}` "
        f"({minutes:.1f} min on 2 cores)",
        f"- compared on all {len(val)} SROIE val receipts, each candidate at its first checkpoint's postprocess; dH "
        "in H-mean points against zero-shot PP-OCR with the paired 95% bootstrap interval",
        "",
        *markdown(table, COLUMNS),
        "",
        f"Postprocess searched on the first {TUNE_IMAGES} SROIE *train* receipts for the best candidate "
        f"({len(search)} settings; best: thresh {search.iloc[0]['thresh']}, box_thresh {search.iloc[0]['box_thresh']}, "
        f"unclip {search.iloc[0]['unclip_ratio']}), then scored on val, out of sample, against the baseline:",
        "",
        *markdown(held_out, COLUMNS),
    ]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
