"""Notebook 04 on real receipts: the lite DBNet, PP-OCR zero-shot and fine-tuned, their hybrids with TTA, the search.

Run from the project root after ``python -m bench.train_sroie``: ``python -m bench.ensemble_sroie``.
Saves zero-shot PP-OCR as a checkpoint (``python -m kit pretrained``'s function) so that notebook 04
treats it like a trained one, fine-tunes PP-OCR on the 400 train receipts with issue 20's best recipe
(``bench.shared.RECIPE``; reused when its run ``outputs/bench-sroie-ppocr-ft`` holds a best
checkpoint), then executes ``notebooks/04_ensemble.ipynb`` on SROIE val with candidates: each single
model, the map-averaging hybrid of all three, the lite DBNet with the fine-tuned PP-OCR, and the
three with TTA; every candidate against zero-shot PP-OCR with the paired 95% interval; the
postprocess searched on 50 *train* receipts and the searched candidate scored on val, out of
sample. Writes ``bench/results/ensemble_sroie.md``; the executed notebook is
``outputs/bench/04_ensemble_sroie.ipynb``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from bench import markdown, write_results
from bench.shared import (
    COLUMNS,
    FINE_TUNED_RUN,
    RECIPE,
    SROIE,
    TUNE_IMAGES,
    ZERO_SHOT,
    sroie_or_exit,
    together,
    zero_shot,
)
from kit.experiments.pipeline import run_notebook
from kit.paths import OUTPUTS, ROOT, expand_checkpoints
from kit.training.config import resolve_config
from kit.training.run import train

LITE = "outputs/bench-sroie-lite0/checkpoints/best-*.ckpt"
OUT = OUTPUTS / "bench" / "ensemble_sroie"
RESULTS = ROOT / "bench" / "results" / "ensemble_sroie.md"
TTA = "scale=0.8"


def fine_tuned() -> tuple[Path, pd.DataFrame]:
    """The fine-tuned PP-OCR's best checkpoint and its run's metrics, training it first if its run has none."""
    run_dir = OUTPUTS / FINE_TUNED_RUN
    best = sorted((run_dir / "checkpoints").glob("best-*.ckpt"))
    if not best:
        config = resolve_config("ppocr_cpu_v1", run_name=FINE_TUNED_RUN, data_dir=str(SROIE), **together(RECIPE)[1])
        best = [train(config).best_checkpoint]
    return best[0], pd.read_csv(run_dir / "metrics.csv")


def main() -> None:
    val = sroie_or_exit()[0]
    lite = expand_checkpoints(LITE)[0]
    zero_shot()
    fine, fine_metrics = fine_tuned()
    start = time.perf_counter()
    executed = run_notebook("04_ensemble.ipynb", OUTPUTS / "bench", {
        "checkpoints": [str(lite), str(ZERO_SHOT), str(fine)], "hybrid": [str(lite), str(fine)], "tta": TTA,
        "data_dir": str(SROIE), "split": "val",
        "baseline": "zero-shot", "search_split": "train", "search_max_images": TUNE_IMAGES,
        "unclip_ratios": [1.5, 1.8, 2.0], "output_dir": str(OUT)}, out_name="04_ensemble_sroie.ipynb")
    minutes = (time.perf_counter() - start) / 60
    table, held_out = pd.read_csv(OUT / "comparison.csv"), pd.read_csv(OUT / "searched_on_split.csv")
    search = pd.read_csv(OUT / "threshold_search.csv")
    lines = [
        "# Notebook 04 on SROIE: lite DBNet, PP-OCR zero-shot and fine-tuned, their hybrids, TTA, the search on train",
        "",
        f"- checkpoints: `{lite.relative_to(ROOT)}` (`python -m bench.train_sroie`), zero-shot PP-OCRv6 saved as "
        f"`{ZERO_SHOT.relative_to(ROOT)}` and PP-OCR fine-tuned on all the train receipts, "
        f"`{fine.relative_to(ROOT)}` ({together(RECIPE)[0].removeprefix('together: ')}; "
        f"{fine_metrics['epoch_time_s'].sum() / 60:.1f} training minutes with validation on the first "
        f"{fine_metrics['val_images'].iloc[0]} val receipts; val H-mean by epoch "
        f"{', '.join(f'{h:.4f}' for h in fine_metrics['val_hmean'])}); "
        f"`hybrid ensemble`: the lite DBNet with the fine-tuned PP-OCR; TTA views: {TTA}; executed notebook "
        f"`{executed.relative_to(ROOT)}` "
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
