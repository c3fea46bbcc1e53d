"""Real accuracy offline: PaddleOCR's pretrained DB detector, zero-shot and fine-tuned on SROIE on the CPU.

Run from the project root: ``python -m bench.ppocr_sroie [--preset ppocr_cpu] [--reuse]``.
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
from dataclasses import replace

import pandas as pd
import torch

from bench import write_results
from kit.cli import parse_overrides
from kit.data import load_split
from kit.model import build_model
from kit.paths import ROOT, project_path
from kit.postprocess import PostprocessConfig
from kit.predict import Predictor, evaluate_predictor
from kit.threshold_search import best_setting, cache_maps, threshold_search
from kit.train import resolve_config, train

SROIE = ROOT.parent / "shared" / "data" / "sroie"
RESULTS = ROOT / "bench" / "results" / "ppocr_sroie.md"
RUN = "bench-sroie-ppocr"
GRID = ([0.2, 0.3], [0.4, 0.5, 0.6], [1.4, 1.6, 1.8, 2.0])


def evaluate_both(predictor: Predictor, tune: list, val: list) -> tuple[dict, dict, dict]:
    """Val scores at the predictor's settings, the setting searched on ``tune``, and val scores at it."""
    preset = evaluate_predictor(predictor, val, progress=False)
    searched = best_setting(threshold_search(cache_maps(predictor, tune, progress=False), *GRID, workers=2,
                                             progress=False))
    predictor.config = replace(predictor.config, **searched)
    return preset, searched, evaluate_predictor(predictor, val, progress=False)


def row(name: str, scores: dict[str, float]) -> str:
    return (f"| {name} | {scores['precision']:.4f} | {scores['recall']:.4f} | {scores['hmean']:.4f} "
            f"| {scores['split_words']} | {scores['merging_boxes']} | {scores['ms_per_image']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="ppocr_cpu")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a preset setting")
    parser.add_argument("--reuse", action="store_true", help="evaluate the existing run instead of training")
    args = parser.parse_args()
    if not (SROIE / "jsons" / "train.json").is_file():
        sys.exit(f"{SROIE} not found")
    overrides = parse_overrides(args.set)
    config = resolve_config(args.preset, data_dir=str(SROIE), run_name=RUN, **overrides)
    val, tune = load_split(SROIE, "val")[0], load_split(SROIE, "train")[0][:50]
    run_dir = project_path(config.output_dir) / RUN

    if args.reuse:
        best = next((run_dir / "checkpoints").glob("best-*.ckpt"))
        metrics, minutes = pd.read_csv(run_dir / "metrics.csv"), None
    else:
        started = time.time()
        result = train(config)
        best, metrics, minutes = result.best_checkpoint, result.metrics, (time.time() - started) / 60
    best_epoch = int(metrics.loc[metrics["val_hmean"].idxmax(), "epoch"])
    postprocess = PostprocessConfig(**config.postprocess.to_dict())
    zero_shot = Predictor([build_model("ppocr_det", pretrained=True)], [config.final_size], postprocess)
    before, before_setting, before_tuned = evaluate_both(zero_shot, tune, val)
    after, after_setting, after_tuned = evaluate_both(Predictor.load([best]), tune, val)

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
        f"searched on the first 50 *train* receipts over thresh {GRID[0]} x box_thresh {GRID[1]} x unclip {GRID[2]}",
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
