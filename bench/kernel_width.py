"""How wide a kernel does each detector predict, against the kit's training targets, on the same SROIE boxes?

Issue 20: the fine-tune loses recall and wants a wider unclip than zero-shot (``ppocr_train_search.md``: 2.6 vs
2.2). If PP-OCRv6 was trained on kernels of another width than the kit's targets (shrink ratio 0.4: a thin
line's kernel is 0.4**2 = 0.16 of its height), fine-tuning first has to unlearn the shipped kernels. Measured per
GT box in the 1280 px frame: the kernel's height (the short side of the minimum-area rectangle of the map's pixels
above ``thresh`` inside the box) over the box's height, for the kit's target map (the reference) and each
detector's probability map. Run from the project root after ``python -m bench.ensemble_sroie`` (which trains the
fine-tune): ``python -m bench.kernel_width [--images N]``. Writes ``bench/results/kernel_width.md``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from bench import markdown, write_results
from bench.shared import FINE_TUNED_RUN, SROIE, sroie_or_exit, zero_shot
from kit.data.annotations import load_split, read_image
from kit.data.dataset import letterbox_size
from kit.data.targets import TargetConfig, make_targets
from kit.inference.predict import Predictor
from kit.paths import OUTPUTS

RESULTS = Path(__file__).parent / "results" / "kernel_width.md"
FRAME = 1280  # SROIE's letterbox, where every detector here is evaluated
THRESH = 0.3  # the presets' binarisation threshold
SHRINK_RATIOS = (0.4, 0.5, 0.6, 0.7, 0.8)  # the kit's default (PaddleOCR's) and wider kernels
MIN_HEIGHT = 8.0  # boxes thinner than this in the frame are too coarse to measure a fraction of


def kernel_ratios(maps: dict[str, np.ndarray], polygons: list[np.ndarray]) -> dict[str, list[float]]:
    """Per map, per box: the kernel's height (the map's pixels above THRESH inside the box) over the box's height.

    Each box's mask is drawn once, in its bounding window, for all the maps."""
    ratios: dict[str, list[float]] = {name: [] for name in maps}
    shape = next(iter(maps.values())).shape
    for polygon in polygons:
        box_height = min(cv2.minAreaRect(polygon.astype(np.float32))[1])
        if box_height < MIN_HEIGHT:
            continue
        points = np.round(polygon).astype(np.int32)
        x, y, w, h = cv2.boundingRect(points)
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, shape[1]), min(y + h, shape[0])
        inside = np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), np.uint8)  # the window of the frame the box covers
        if inside.size:  # a box wholly outside the frame has no kernel pixels
            cv2.fillPoly(inside, [points - [x0, y0]], 1)
        for name, prob in maps.items():
            ys, xs = np.nonzero((prob[y0:y1, x0:x1] > THRESH) & (inside > 0))
            kernel = min(cv2.minAreaRect(np.stack([xs, ys], 1).astype(np.float32))[1]) + 1 if len(xs) > 2 else 0.0
            ratios[name].append(kernel / box_height)
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=80, help="the last N train receipts")
    parser.add_argument("--fine-tuned", type=Path, default=None, metavar="CKPT",
                        help=f"the fine-tuned row's checkpoint (default: {FINE_TUNED_RUN}'s best, trained on them)")
    parser.add_argument("--results", default=RESULTS.name, metavar="FILE.md", help="the results file in bench/results/")
    args = parser.parse_args()
    sroie_or_exit()
    receipts = load_split(SROIE, "train")[0][-args.images:]
    fine = [args.fine_tuned] if args.fine_tuned else \
        sorted((OUTPUTS / FINE_TUNED_RUN / "checkpoints").glob("best-*.ckpt"))
    detectors = {"zero-shot PP-OCR": Predictor.load([zero_shot()])}
    if fine:
        detectors["fine-tuned PP-OCR"] = Predictor.load(fine[:1])
    targets = {f"kit targets (shrink {r})": r for r in SHRINK_RATIOS}
    ratios: dict[str, list[float]] = {name: [] for name in [*targets, *detectors]}
    for record in receipts:
        image = read_image(record.path)
        width, height = letterbox_size(image.shape[1], image.shape[0], FRAME)
        scale = np.array([width / image.shape[1], height / image.shape[0]])
        polygons = [p * scale for p in record.polygons(include_degenerate=False)]
        maps = {name: make_targets(polygons, height, width, config=TargetConfig(shrink_ratio=ratio))["gt"]
                for name, ratio in targets.items()}
        for name, predictor in detectors.items():
            maps[name] = predictor.prob_map(image)[0]
            if maps[name].shape != (height, width):
                raise SystemExit(f"{name} does not evaluate at {FRAME} px: its map is {maps[name].shape}")
        for name, found in kernel_ratios(maps, polygons).items():
            ratios[name] += found
    fine_row = (f"`{fine[0]}`" if args.fine_tuned else f"`{FINE_TUNED_RUN}`'s, `bench.ensemble_sroie`'s, which trained "
                "on them") if fine else "none"
    rows = [{"map": name, "boxes": len(r), "median": np.median(r), "p25": np.percentile(r, 25),
             "p75": np.percentile(r, 75), "no_kernel": float(np.mean(np.asarray(r) == 0))}
            for name, r in ratios.items()]
    table = pd.DataFrame(rows)
    lines = [
        "# Kernel height over box height: the kit's targets against each detector's probability map (SROIE train)",
        "",
        f"- the last {len(receipts)} SROIE train receipts (held out of `ppocr_train_search`'s fine-tunes; the "
        f"fine-tuned row: {fine_row}) letterboxed to "
        f"{FRAME} px; GT boxes at least {MIN_HEIGHT:.0f} px high; "
        f"kernel: pixels above {THRESH} inside the box; a thin line's kernel at shrink ratio r is r**2 of its height "
        "(0.16 at 0.4)",
        f"- command: `{shlex.join(['python', '-m', 'bench.kernel_width', *sys.argv[1:]])}`",
        "",
        *markdown(table, list(table.columns)),
    ]
    write_results(RESULTS.with_name(args.results), lines)


if __name__ == "__main__":
    main()
