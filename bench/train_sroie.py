"""Real-data proof: train ResNet-18 DBNet from scratch (no pretrained weights) on the SROIE receipts.

Run from the project root: ``python -m bench.train_sroie [--epochs 5 --size 512]``. Writes
``bench/results/train_sroie.md`` with per-epoch val CLEval and epoch times; the run itself is
in ``outputs/bench-sroie-resnet18/``. Needs ``../shared/data/sroie``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

from bench import write_results
from kit.paths import ROOT
from kit.train import resolve_config, train

SROIE = ROOT.parent / "shared" / "data" / "sroie"
RESULTS = ROOT / "bench" / "results" / "train_sroie.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--val-images", type=int, default=50)
    args = parser.parse_args()
    if not (SROIE / "jsons" / "train.json").is_file():
        sys.exit(f"{SROIE} not found")
    config = resolve_config(
        arch="resnet18", pretrained=False, data_dir=str(SROIE), epochs=args.epochs, t_max=args.epochs,
        lr=1e-3, eta_min=1e-5, weight_decay=0.0, batch_size=args.batch, schedule=[[0, args.size]],
        max_val_images=args.val_images, patience=args.epochs, num_workers=2, run_name="bench-sroie-resnet18",
    )
    result = train(config)
    m = result.metrics
    lines = [
        "# Training on real receipts (SROIE) on a CPU",
        "",
        f"- ResNet-18 DBNet from scratch (no pretrained weights: no model hub here), {len(m)} epochs, "
        f"{args.size} px, batch {args.batch}, Adam lr 1e-3 cosine; 400 train images, val = first "
        f"{args.val_images} of the 100 val images",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, no GPU; command: "
        f"`python -m bench.train_sroie --epochs {args.epochs} --size {args.size}`",
        "",
        "| epoch | loss | loss_prob | val P | val R | val H | epoch s | train img/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for _, r in m.iterrows():
        lines.append(f"| {int(r.epoch)} | {r.loss_total:.3f} | {r.loss_prob:.3f} | {r.val_precision:.4f} "
                     f"| {r.val_recall:.4f} | {r.val_hmean:.4f} | {r.epoch_time_s:.0f} | {r.train_images_per_s:.2f} |")
    lines += ["", f"Best epoch {result.summary['best_epoch']}: val H-mean {result.summary['val_hmean']:.4f}; "
              f"total {result.summary['train_time_s'] / 60:.1f} min."]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
