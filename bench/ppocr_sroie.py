"""Real accuracy offline: PaddleOCR's pretrained DB detector, zero-shot and fine-tuned on SROIE on the CPU.

Run from the project root: ``python -m bench.ppocr_sroie [--preset ppocr_cpu_v1] [--reuse]``.
Evaluates the detector bundled with rapidocr zero-shot on SROIE val (100 receipts),
fine-tunes it with the preset on SROIE train (400), and evaluates the best checkpoint the
same way, each at the preset's postprocess settings and at the setting a threshold search
picks on 50 *train* receipts (val stays unseen). Writes ``bench/results/ppocr_sroie.md``;
the run itself is in ``outputs/bench-sroie-ppocr/`` (``--reuse`` evaluates that run again
instead of training). Needs ``../shared/data/sroie``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import pandas as pd
import torch

from bench import write_results
from bench.shared import GRID, SROIE, TUNE_IMAGES, evaluate_both, row, sroie_or_exit
from kit.cli import parse_overrides
from kit.inference.predict import Predictor
from kit.model.factory import build_model
from kit.model.postprocess import PostprocessConfig
from kit.paths import ROOT, project_path
from kit.training.config import resolve_config
from kit.training.run import train

RESULTS = ROOT / "bench" / "results" / "ppocr_sroie.md"
RUN = "bench-sroie-ppocr"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="ppocr_cpu_v1")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a preset setting")
    parser.add_argument("--reuse", action="store_true", help="evaluate the existing run instead of training")
    args = parser.parse_args()
    val, tune = sroie_or_exit()
    overrides = parse_overrides(args.set)
    config = resolve_config(args.preset, data_dir=str(SROIE), run_name=RUN, **overrides)
    run_dir = project_path(config.output_dir) / RUN

    if args.reuse:
        best = next((run_dir / "checkpoints").glob("best-*.ckpt"))
        metrics, minutes = pd.read_csv(run_dir / "metrics.csv"), None
    else:
        started = time.time()
        result = train(config, overwrite=True)
        best, metrics, minutes = result.best_checkpoint, result.metrics, (time.time() - started) / 60
    best_epoch = int(metrics.loc[metrics["val_hmean"].idxmax(), "epoch"])
    postprocess = PostprocessConfig(**config.postprocess.to_dict())
    zero_shot = Predictor([build_model("ppocr_det", pretrained=True)], [config.final_size], postprocess)
    zero, tuned = evaluate_both(zero_shot, tune, val), evaluate_both(Predictor.load([best]), tune, val)
    before, before_setting, before_tuned = zero.preset, zero.setting, zero.searched
    after, after_setting, after_tuned = tuned.preset, tuned.setting, tuned.searched

    lines = [
        "# PaddleOCR's pretrained DB detector on SROIE, zero-shot and fine-tuned on a CPU",
        "",
        f"- model: PP-OCRv6 det small from the rapidocr 3.10.0 wheel, converted with onnx2torch (`arch=ppocr_det`), "
        f"{sum(p.numel() for p in zero_shot.models[0].parameters()):,} parameters",
        f"- preset `{args.preset}` {overrides or ''}: {config.epochs} epochs, Adam lr {config.lr} cosine to "
        f"{config.eta_min}, batch {config.batch_size}, letterbox {config.schedule[-1][1]} px, random "
        f"{config.augment.crop} px crops, threshold branch {'on' if config.thresh_branch else 'off'}, validation "
        f"every epoch on {config.max_val_images or 'all'} val receipts; evaluation at {config.final_size} px",
        "- data: SROIE train 400 / val 100 (all of val evaluated below, CLEval as the leaderboard); postprocess "
        f"searched on the first {TUNE_IMAGES} *train* receipts over thresh {GRID[0]} x box_thresh {GRID[1]} x "
        f"unclip {GRID[2]}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, no GPU; "
        f"command: `python -m bench.ppocr_sroie {' '.join(sys.argv[1:])}`",
        "",
        "| model (postprocess) | P | R | H-mean | split GT words | merging boxes | ms/image (predict + metric) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        row(f"zero-shot (preset: unclip {postprocess.unclip_ratio})", before),
        row(f"zero-shot (searched: {before_setting})", before_tuned),
        row(f"fine-tuned, best epoch {best_epoch} (preset)", after),
        row(f"fine-tuned, best epoch {best_epoch} (searched: {after_setting})", after_tuned),
        "",
        "| epoch | loss | val P | val R | val H | epoch s (incl. validation) | train img/s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for _, r in metrics.iterrows():
        lines.append(f"| {int(r.epoch)} | {r.loss_total:.3f} | {r.val_precision:.4f} | {r.val_recall:.4f} "
                     f"| {r.val_hmean:.4f} | {r.epoch_time_s:.0f} | {r.train_images_per_s:.2f} |")
    took = f"{minutes:.1f} min" if minutes is not None else f"{metrics['epoch_time_s'].sum() / 60:.1f} min (epochs)"
    lines += ["", f"Training with validation every epoch took {took}; val H-mean zero-shot {before_tuned['hmean']:.4f} "
              f"-> fine-tuned {after_tuned['hmean']:.4f} (each at its searched setting)."]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
