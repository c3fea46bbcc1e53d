"""Notebook 04's threshold search on SROIE val per backend: caching the maps (the network's part) and the search
on them (the CPU metric's part), torch against ONNX Runtime.

Run from the project root: ``python -m bench.search_backends``. Zero-shot PP-OCRv6 det (preset ``ppocr_cpu``, its
evaluation size 1280 px) on the 100 SROIE val receipts (``../shared``; the synthetic val receipts without it):
``kit.inference.threshold_search.cache_maps`` timed on torch padding to a square (the kit before ONNX Runtime and
per-checkpoint padding), on ONNX Runtime padding to a square, and on ONNX Runtime padding as the checkpoint says (to a
multiple of 32: today's default), then notebook 04's default grid (thresh 0.2-0.35 x box_thresh 0.3-0.6 x unclip
1.5, 2.0: 56 settings) searched once on each one's maps with 2 worker processes, the best setting and H-mean of each.
Writes ``bench/results/search_backends.md``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from bench import machine_and_command, markdown, write_results
from kit.data.annotations import load_split
from kit.data.synth import resolve_data_dir
from kit.inference.candidates import Choice
from kit.inference.threshold_search import cache_maps, threshold_search
from kit.paths import ROOT, SYNTH_DIR
from kit.training.config import resolve_config
from kit.training.run import zero_shot_checkpoint

RESULTS = ROOT / "bench" / "results" / "search_backends.md"
SROIE = ROOT.parent / "shared" / "data" / "sroie"
GRID = ([0.2, 0.25, 0.3, 0.35], [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6], [1.5, 2.0])  # notebook 04's defaults


def main() -> None:
    data = SROIE if (SROIE / "jsons" / "val.json").is_file() else resolve_data_dir(SYNTH_DIR)
    records = load_split(data, "val")[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = zero_shot_checkpoint(resolve_config("ppocr_cpu")).save(Path(tmp) / "zero-shot.ckpt")
        for backend, padding in (("torch", "square"), ("onnxruntime", "square"), ("onnxruntime", "checkpoint's")):
            start = time.perf_counter()
            predictor = Choice("zero-shot", [str(checkpoint)], backend=backend).predictor(device="cpu")
            loaded = time.perf_counter() - start
            if padding == "square":
                predictor.pad_multiples = [None]
            shown = "square" if predictor.pad_multiples[0] is None else f"multiple of {predictor.pad_multiples[0]}"
            start = time.perf_counter()
            with torch.inference_mode():
                maps = cache_maps(predictor, records)
            cached = time.perf_counter() - start
            start = time.perf_counter()
            table = threshold_search(maps, *GRID, base=predictor.config, workers=2)
            searched = time.perf_counter() - start
            best = table.iloc[0]
            rows.append({"backend": backend, "padding": shown, "load_s": loaded, "cache_s": cached,
                         "search_s": searched, "total_s": loaded + cached + searched, "best_thresh": best["thresh"],
                         "best_box_thresh": best["box_thresh"], "best_unclip": best["unclip_ratio"],
                         "best_hmean": float(best["hmean"])})
    table = pd.DataFrame(rows)
    table["speedup"] = table.loc[0, "total_s"] / table["total_s"]
    lines = [
        "# Notebook 04's cache + threshold search on SROIE val, per backend",
        "",
        f"- data: {len(records)} {data.name} val receipts; zero-shot PP-OCRv6 det at its evaluation size "
        f"({predictor.eval_sizes[0]} px); grid {len(GRID[0])} x {len(GRID[1])} x {len(GRID[2])} (notebook 04's "
        "defaults), 2 worker processes",
        "- load_s: building the predictor (the ONNX Runtime backend exports the checkpoint in memory first); "
        "cache_s: `cache_maps`; search_s: `threshold_search` on those maps",
        machine_and_command("bench.search_backends"),
        "",
        *markdown(table, ["backend", "padding", "load_s", "cache_s", "search_s", "total_s", "speedup", "best_thresh",
                          "best_box_thresh", "best_unclip", "best_hmean"]),
    ]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
