"""Benchmark: CLEval, kit vs the straightforward per-pair reference, on a realistic workload.

Run from the project root: ``python -m bench.cleval [--images 400 --words 115 --reference-images 20]``.
Writes ``bench/results/cleval.md``. The workload: receipt-like pages of word boxes and
predictions with jitter, splits, merges, misses and false positives (``tests.reference.make_workload``).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from bench import write_results
from kit.metric import evaluate, evaluate_image
from kit.paths import ROOT
from tests.reference import make_workload, reference_cleval_image

RESULTS = ROOT / "bench" / "results" / "cleval.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--words", type=int, default=115)
    parser.add_argument("--reference-images", type=int, default=20)
    args = parser.parse_args()
    gt, pred = make_workload(args.images, args.words, seed=0)
    names = list(gt)

    start = time.perf_counter()
    single = evaluate(gt, pred)
    kit_s = time.perf_counter() - start
    start = time.perf_counter()
    multi = evaluate(gt, pred, workers=2)
    multi_s = time.perf_counter() - start

    subset = names[: args.reference_images]
    fast_s = float("inf")
    for _ in range(3):  # best of 3: 20 images take a fraction of a second, so one run is noisy
        start = time.perf_counter()
        fast = [evaluate_image(gt[n], pred[n]) for n in subset]
        fast_s = min(fast_s, time.perf_counter() - start)
    start = time.perf_counter()
    slow = [reference_cleval_image(gt[n], pred[n]) for n in subset]
    ref_s = time.perf_counter() - start
    identical = all(a.scores() == b.scores() and a.num_char_det == b.num_char_det for a, b in zip(fast, slow))

    n_det = sum(len(pred[n]) for n in names) / len(names)
    lines = [
        "# CLEval benchmark",
        "",
        f"- workload: {args.images} images x {args.words} GT words, {n_det:.0f} detections/image "
        "(jitter, 5% splits, 5% merges, 5% misses, 0-5 false positives)",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores; command: `python -m bench.cleval`",
        "",
        "| implementation | images | seconds | images/s | ratio |",
        "| --- | --- | --- | --- | --- |",
        f"| reference (per pair, per point), 1 process | {len(subset)} | {ref_s:.2f} | {len(subset) / ref_s:.1f} | 1x |",
        f"| kit, 1 process, same images (best of 3) | {len(subset)} | {fast_s:.2f} | {len(subset) / fast_s:.1f} "
        f"| {ref_s / fast_s:.0f}x |",
        f"| kit, 1 process | {len(names)} | {kit_s:.2f} | {len(names) / kit_s:.1f} | |",
        f"| kit, 2 processes | {len(names)} | {multi_s:.2f} | {len(names) / multi_s:.1f} | |",
        "",
        f"Identical per-image scores and counts on the reference images: {identical}. "
        f"Dataset (mean of images): P {single.precision:.6f} R {single.recall:.6f} H {single.hmean:.6f}; "
        f"2 processes identical: {multi.scores() == single.scores()}.",
        "",
        "The published reference timing (`../shared/cleval/README.md`) was not available to this run.",
    ]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
