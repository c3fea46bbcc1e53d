"""Benchmark: CLEval against the competition's reference timing, the per-pair reference, and a threshold grid.

Run from the project root: ``python -m bench.cleval [--pages 100 --images 400 --words 115]``.
Writes ``bench/results/cleval.md``:

1. the golden ``page`` cases of ``../shared/cleval/cases`` (receipt pages of ~115 words
   from the generator behind the reference's published timing), cycled to ``--pages``
   pages, one process, best of 3, against the reference's published 29.2 s per 100 pages;
2. ``tests.reference.reference_cleval_image`` (the same rules pair by pair) on a synthetic
   workload, with identical scores checked;
3. a 50-setting threshold search (5 thresh x 5 box_thresh x 2 unclip) on SROIE val with
   the maps of the pretrained PP-OCR detector, when ``../shared/data/sroie`` is present.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import time

from bench import best_of, write_results
from kit.data.annotations import load_split
from kit.evaluation.cleval import evaluate, evaluate_image
from kit.evaluation.cleval_files import polygons_by_image
from kit.paths import ROOT
from tests.reference import make_workload, reference_cleval_image

RESULTS = ROOT / "bench" / "results" / "cleval.md"
CASES = ROOT.parent / "shared" / "cleval" / "cases"
SROIE = ROOT.parent / "shared" / "data" / "sroie"
#: ../shared/cleval/README.md: 100 receipt pages, best of 3 on 2 cores, evaluation only.
REFERENCE_S_PER_100_PAGES = 29.2


def golden_pages(count: int) -> tuple[dict, dict]:
    """The golden page cases' images, cycled to ``count`` pages (GT and predictions as the metric reads them)."""
    pages = []
    for case in sorted(CASES.glob("*_receipt_page*")):
        gt, pred = polygons_by_image(case / "gt.json", gt=True), polygons_by_image(case / "pred.json")
        pages += [(gt[n], pred.get(n, [])) for n in gt]
    chosen = list(itertools.islice(itertools.cycle(pages), count))
    return ({f"p{i:03d}": g for i, (g, _) in enumerate(chosen)}, {f"p{i:03d}": d for i, (_, d) in enumerate(chosen)})


def page_lines(pages: int) -> list[str]:
    if not CASES.is_dir():
        return ["", f"Golden page cases: {CASES} absent, not run."]
    gt, pred = golden_pages(pages)
    seconds = best_of(3, lambda: evaluate(gt, pred))
    words, dets = sum(map(len, gt.values())), sum(map(len, pred.values()))
    scaled = seconds * 100 / pages
    return [
        "",
        f"## Against the competition's reference ({pages} receipt pages, {words:,} GT words, {dets:,} predictions)",
        "",
        "| implementation | seconds per 100 pages | ms/page | ratio |",
        "| --- | --- | --- | --- |",
        f"| reference (published, ../shared/cleval/README.md) | {REFERENCE_S_PER_100_PAGES:.1f} "
        f"| {10 * REFERENCE_S_PER_100_PAGES:.0f} | 1x |",
        f"| kit, 1 process, best of 3 | {scaled:.2f} | {10 * scaled:.1f} | {REFERENCE_S_PER_100_PAGES / scaled:.0f}x |",
        "",
        "The pages are the golden `page` cases (made by the generator behind the published timing), "
        "cycled; every golden case's scores and per-image counts match the reference "
        "(tests/evaluation/test_cleval.py).",
    ]


def threshold_lines() -> list[str]:
    if not (SROIE / "jsons" / "val.json").is_file():
        return ["", f"Threshold search: {SROIE} absent, not run."]
    from kit.inference.predict import Predictor
    from kit.inference.threshold_search import cache_maps, threshold_search
    from kit.model.factory import build_model
    from kit.model.postprocess import PostprocessConfig

    records = load_split(SROIE, "val")[0]
    predictor = Predictor([build_model("ppocr_det", pretrained=True)], [960], PostprocessConfig())
    start = time.perf_counter()
    maps = cache_maps(predictor, records, progress=False)
    cache_s = time.perf_counter() - start
    grid = ([0.2, 0.25, 0.3, 0.35, 0.4], [0.4, 0.5, 0.6, 0.7, 0.8], [1.5, 2.0])
    timings = {}
    for workers in (1, 2):
        start = time.perf_counter()
        table = threshold_search(maps, *grid, workers=workers, progress=False)
        timings[workers] = time.perf_counter() - start
    best = table.iloc[0]
    return [
        "",
        f"## Threshold search: 50 settings on SROIE val ({len(records)} receipts)",
        "",
        f"Maps of the pretrained PP-OCR detector at 960 px, cached once in {cache_s:.0f} s; "
        f"grid thresh {grid[0]} x box_thresh {grid[1]} x unclip {grid[2]}: "
        f"{timings[1]:.1f} s in 1 process, {timings[2]:.1f} s in 2 "
        f"({1000 * timings[1] / (50 * len(records)):.1f} ms per setting and image, postprocess included). "
        f"Best: thresh {best.thresh}, box_thresh {best.box_thresh}, unclip {best.unclip_ratio}: "
        f"H-mean {best.hmean:.4f} (P {best.precision:.4f}, R {best.recall:.4f}).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--words", type=int, default=115)
    parser.add_argument("--reference-images", type=int, default=20)
    parser.add_argument("--no-threshold-search", action="store_true")
    args = parser.parse_args()
    gt, pred = make_workload(args.images, args.words, seed=0)
    names = list(gt)
    kit_s = best_of(1, lambda: evaluate(gt, pred))
    multi_s = best_of(1, lambda: evaluate(gt, pred, workers=2))
    subset = names[: args.reference_images]
    fast_s = best_of(3, lambda: [evaluate_image(gt[n], pred[n]) for n in subset])
    start = time.perf_counter()
    slow = [reference_cleval_image(gt[n], pred[n]) for n in subset]
    ref_s = time.perf_counter() - start
    fast = [evaluate_image(gt[n], pred[n]) for n in subset]
    identical = all(a.scores() == b.scores() and a.num_char_det == b.num_char_det for a, b in zip(fast, slow))
    n_det = sum(len(pred[n]) for n in names) / len(names)
    lines = [
        "# CLEval benchmark",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores; command: `python -m bench.cleval`",
    ]
    lines += page_lines(args.pages)
    lines += [
        "",
        f"## Against the per-pair reference (synthetic: {args.images} images x {args.words} GT words, "
        f"{n_det:.0f} detections/image; jitter, 5% splits, 5% merges, 5% misses, 0-5 false positives)",
        "",
        "| implementation | images | seconds | images/s | ratio |",
        "| --- | --- | --- | --- | --- |",
        f"| reference (per pair, per point), 1 process | {len(subset)} | {ref_s:.2f} | {len(subset) / ref_s:.1f} "
        "| 1x |",
        f"| kit, 1 process, same images (best of 3) | {len(subset)} | {fast_s:.3f} | {len(subset) / fast_s:.1f} "
        f"| {ref_s / fast_s:.0f}x |",
        f"| kit, 1 process | {len(names)} | {kit_s:.2f} | {len(names) / kit_s:.1f} | |",
        f"| kit, 2 processes | {len(names)} | {multi_s:.2f} | {len(names) / multi_s:.1f} | |",
        "",
        f"Identical per-image scores and counts on the reference images: {identical}.",
    ]
    if not args.no_threshold_search:
        lines += threshold_lines()
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
