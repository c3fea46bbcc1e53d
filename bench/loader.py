"""Benchmark: does data loading keep up with the train step? Loader images/s alone vs train-step images/s.

Run from the project root: ``python -m bench.loader [--size 640 --workers 2 --arch resnet18]``.
Writes ``bench/results/loader.md``. Uses ``../shared/data/sroie`` train when present, else the
synthetic train split. On a GPU box the step is measured on the GPU (the loader stays on the CPU).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from bench import write_results
from kit.data.annotations import load_split
from kit.data.dataset import AugConfig, TextDetectionDataset
from kit.data.synth import ensure_dataset
from kit.model.factory import build_model
from kit.model.loss import db_loss
from kit.paths import ROOT, SYNTH_DIR
from kit.runtime import Runtime, to_device
from kit.training.config import resolve_config
from kit.training.loop import make_loader

SROIE = ROOT.parent / "shared" / "data" / "sroie"
RESULTS = ROOT / "bench" / "results" / "loader.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--arch", default="resnet18")
    args = parser.parse_args()
    data = SROIE if (SROIE / "jsons" / "train.json").is_file() else ensure_dataset(SYNTH_DIR)
    records, _ = load_split(data, "train")
    records = records[: args.batch * args.batches]
    config = resolve_config(batch_size=args.batch, num_workers=args.workers)
    runtime = Runtime(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    dataset = TextDetectionDataset(records, args.size, AugConfig())

    start = time.perf_counter()
    batches = list(make_loader(dataset, config, 0, train=True, runtime=runtime))
    load_s = time.perf_counter() - start

    model = build_model(args.arch).to(runtime.device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    step_s = 0.0
    for i, batch in enumerate(batches):
        batch = to_device(batch, runtime.device)
        if runtime.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = db_loss(model(batch["image"]), batch)["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if runtime.device.type == "cuda":
            torch.cuda.synchronize()
        if i:  # the first step warms up
            step_s += time.perf_counter() - start
    n = len(records)
    load_rate = n / load_s
    step_rate = (n - len(batches[0]["name"])) / step_s
    lines = [
        "# Data loading vs train step",
        "",
        f"- data: `{data.name}` train, {n} images at {args.size} px with augmentation and DBNet targets; "
        f"{args.workers} loader workers, batch {args.batch}",
        f"- step: {args.arch} forward + backward + Adam on {runtime.device.type}; machine: {platform.machine()}, "
        f"{os.cpu_count()} cores",
        f"- command: `python -m bench.loader --size {args.size} --workers {args.workers}`",
        "",
        "| stage | images/s |",
        "| --- | --- |",
        f"| loader alone | {load_rate:.1f} |",
        f"| train step alone | {step_rate:.1f} |",
        "",
        f"Loader / step ratio: {load_rate / step_rate:.2f} "
        f"({'the loader keeps up' if load_rate >= step_rate else 'the loader is the bottleneck: add workers'}).",
    ]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
