"""Which way to fine-tune the pretrained PP-OCR detector on a CPU: short runs of each choice on SROIE.

Run from the project root: ``python -m bench.ppocr_ablation [--train-images 100 --val-images 30]``.
Each variant fine-tunes the bundled PP-OCRv6 det for one epoch on the first ``--train-images``
SROIE train receipts from the ``ppocr_cpu_v1`` preset, changing one choice, and is validated at
1280 px on the first ``--val-images`` val receipts (the zero-shot model is the row to beat).
Each row also gives val H-mean at ``thresh`` 0.2. Writes ``bench/results/ppocr_ablation.md``.
Needs ``../shared/data/sroie``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from dataclasses import replace

from bench import write_results
from kit.data.annotations import load_split
from kit.inference.predict import Predictor, evaluate_predictor
from kit.model.factory import build_model
from kit.model.postprocess import PostprocessConfig
from kit.paths import ROOT
from kit.training.config import resolve_config
from kit.training.run import train

SROIE = ROOT.parent / "shared" / "data" / "sroie"
RESULTS = ROOT / "bench" / "results" / "ppocr_ablation.md"
VARIANTS = {
    "preset: threshold branch, 640 crops of the 1280 letterbox": {},
    "probability map alone (no threshold branch)": {"thresh_branch": False},
    "whole receipt letterboxed to 640 (no crops)": {"schedule": [[0, 640]], "augment": {"crop": None}},
    "probability map alone, lr 3e-5": {"thresh_branch": False, "lr": 3e-5, "eta_min": 3e-6},
    "probability map alone, lr 3e-4": {"thresh_branch": False, "lr": 3e-4, "eta_min": 3e-5},
}
#: A second operating point for every row: the threshold search on SROIE prefers thresh 0.2 (ppocr_sroie.md).
LOW_THRESH = 0.2


def low_thresh_hmean(predictor: Predictor, val: list) -> float:
    """Val H-mean of ``predictor`` at ``thresh`` 0.2, its other postprocess settings unchanged."""
    predictor.config = replace(predictor.config, thresh=LOW_THRESH)
    return evaluate_predictor(predictor, val, progress=False)["hmean"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-images", type=int, default=100)
    parser.add_argument("--val-images", type=int, default=30)
    args = parser.parse_args()
    if not (SROIE / "jsons" / "train.json").is_file():
        sys.exit(f"{SROIE} not found")
    val = load_split(SROIE, "val")[0][: args.val_images]
    zero_shot = Predictor([build_model("ppocr_det", pretrained=True)], [1280], PostprocessConfig())
    zero = evaluate_predictor(zero_shot, val, progress=False)
    rows = [f"| zero-shot | {zero['precision']:.4f} | {zero['recall']:.4f} | {zero['hmean']:.4f} "
            f"| {low_thresh_hmean(zero_shot, val):.4f} | | |"]
    for name, change in VARIANTS.items():
        config = resolve_config("ppocr_cpu_v1", data_dir=str(SROIE), epochs=1, t_max=1,
                                max_train_images=args.train_images, max_val_images=args.val_images, eval_size=1280,
                                run_name="bench-ppocr-ablation", **change)
        run = train(config, overwrite=True)
        m = run.metrics.iloc[-1]
        low = low_thresh_hmean(Predictor.load([run.last_checkpoint]), val)
        rows.append(f"| {name} | {m.val_precision:.4f} | {m.val_recall:.4f} | {m.val_hmean:.4f} | {low:.4f} "
                    f"| {m.loss_total:.3f} | {m.epoch_time_s:.0f} |")
    lines = [
        "# Fine-tuning choices for the pretrained PP-OCR detector (short runs on SROIE)",
        "",
        f"- one epoch from the `ppocr_cpu_v1` preset on the first {args.train_images} SROIE train receipts, "
        f"validated at 1280 px on the first {args.val_images} val receipts; one choice changed per row",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, no GPU; command: "
        f"`python -m bench.ppocr_ablation {' '.join(sys.argv[1:])}`",
        "",
        "| variant | val P | val R | val H | val H at thresh 0.2 | loss | epoch s (incl. validation) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
    ]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
