"""Does the polygon clean-up cost accuracy? SROIE val H-mean, vertices and CSV size per vertex budget.

Run from the project root: ``python -m bench.clean_polygons``. The pretrained PP-OCR detector's
maps of the 100 SROIE val receipts (1280 px) are cached once, then postprocessed with each
``max_vertices`` budget (an unbounded budget keeps the unclipped outline's shape and drops only
repeated and collinear vertices), written as the leaderboard CSV, read back and scored as the
leaderboard would. Writes ``bench/results/clean_polygons.md``. Needs ``../shared/data/sroie``.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench import write_results
from kit.data.annotations import Word, load_split
from kit.data.submission import read_submission, write_submission
from kit.evaluation.cleval import evaluate
from kit.inference.predict import Predictor
from kit.inference.threshold_search import cache_maps, polygons_from_maps
from kit.model.factory import build_model
from kit.model.postprocess import PostprocessConfig
from kit.paths import ROOT

SROIE = ROOT.parent / "shared" / "data" / "sroie"
RESULTS = ROOT / "bench" / "results" / "clean_polygons.md"
BUDGETS = [10**9, 32, 16, 8, 4]


def main() -> None:
    if not (SROIE / "jsons" / "val.json").is_file():
        sys.exit(f"{SROIE} not found")
    records = load_split(SROIE, "val")[0]
    gt = {r.name: r.polygons() for r in records}
    maps = cache_maps(Predictor([build_model("ppocr_det", pretrained=True)], [1280], PostprocessConfig()), records)
    rows = []
    for budget in BUDGETS:
        found = polygons_from_maps(maps, replace(PostprocessConfig(), max_vertices=budget))
        predictions = [replace(r, words=[Word(f"{i + 1:04d}", p) for i, p in enumerate(found[r.name])])
                       for r in records]
        with tempfile.TemporaryDirectory() as tmp:
            csv_path = write_submission(predictions, [r.name for r in records], Path(tmp) / "sub.csv")
            size_kb = csv_path.stat().st_size / 1024
            scored = evaluate(gt, {r.name: r.polygons() for r in read_submission(csv_path)})
        vertices = np.array([len(p) for ps in found.values() for p in ps])
        label = "unbounded" if budget == 10**9 else str(budget)
        rows.append(f"| {label} | {scored.precision:.4f} | {scored.recall:.4f} | {scored.hmean:.4f} "
                    f"| {vertices.mean():.1f} | {vertices.max()} | {size_kb:.0f} |")
    lines = [
        "# Polygon clean-up: accuracy against vertex budget (SROIE val, scored from the CSV)",
        "",
        "- model: the bundled PP-OCRv6 det, zero-shot, 1280 px, default postprocess (thresh 0.3, box_thresh 0.4, "
        "unclip 2.0); 100 SROIE val receipts",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores; command: `python -m bench.clean_polygons`",
        "",
        "| max_vertices | P | R | H-mean | vertices per polygon (mean) | max | CSV KiB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
    ]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
