"""The zoo's tables: every wheel-shipped PP-OCR detector zero-shot, and which normalisation serves each.

``python -m bench.zoo normalisation``: each member on the first ``--images`` SROIE *train* receipts, fed as its
wheel's pipeline feeds it (mean = std = 0.5) and with PaddleOCR's ImageNet statistics (its inference.yml's
``NormalizeImage``); the paired interval says whether the difference is beyond noise. Train receipts choose it,
never val. Writes ``bench/results/zoo_normalisation.md``.

``python -m bench.zoo tables``: ``python -m kit zoo``'s table on SROIE val (all 100), SROIE train (the first
``--images``: the split the fine-tune's start is chosen on), FUNSD val (word level) and the synthetic receipts'
val. Writes ``bench/results/zoo.md``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from datetime import date

import pandas as pd

from bench import machine_and_command, markdown, write_results
from bench.shared import SROIE
from kit.data.annotations import load_split
from kit.data.dataset import IMAGENET_MEAN, IMAGENET_STD
from kit.data.synth import resolve_data_dir
from kit.evaluation.significance import paired_bootstrap
from kit.experiments.zoo import score_member, table_lines, zoo_table
from kit.model import ppocr
from kit.model.ppocr import installed
from kit.paths import ROOT, SYNTH_DIR

FUNSD = ROOT.parent / "shared" / "data" / "funsd"
RESULTS = ROOT / "bench" / "results"


def normalisation(images: int) -> list[str]:
    """Each installed member at its wheel's normalisation and at ImageNet's, on SROIE train receipts."""
    records = load_split(SROIE, "train")[0][:images]
    rows = []
    for name, detector in ppocr.DETECTORS.items():
        if not installed(name):
            continue
        per_image, scores = {}, {}
        for label, (mean, std) in {"wheel (0.5, 0.5)": (detector.mean, detector.std),
                                   "ImageNet": (IMAGENET_MEAN, IMAGENET_STD)}.items():
            ppocr.DETECTORS[name] = replace(detector, mean=tuple(mean), std=tuple(std))
            try:
                with tempfile.TemporaryDirectory() as folder:
                    scores[label], per_image[label] = score_member(name, records, progress=False, folder=folder)
            finally:
                ppocr.DETECTORS[name] = detector
        paired = paired_bootstrap(per_image["wheel (0.5, 0.5)"], per_image["ImageNet"],
                                  names=("wheel", "ImageNet")).row()
        rows.append({"member": name, "model": detector.model,
                     **{f"H {label}": s["hmean"] for label, s in scores.items()},
                     "dH (ImageNet - wheel)": paired["dH"], "low95": paired["dH_low95"],
                     "high95": paired["dH_high95"], "verdict": paired["verdict"]})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    return [f"# Zoo normalisation ({date.today()})", "",
            f"- data: the first {len(records)} SROIE train receipts (never val), each member at its preset's size "
            "(1280 px, padded to a multiple of 32), default postprocess", machine_and_command("bench.zoo"), "",
            *markdown(table, list(table.columns)), ""]


def tables(images: int) -> list[str]:
    """The zoo's table on each data set there is."""
    sets = {"SROIE val (line level)": (SROIE, "val", None),
            f"SROIE train (first {images})": (SROIE, "train", images),
            "FUNSD val (word level)": (FUNSD, "val", None),
            "synthetic receipts val (word level)": (SYNTH_DIR, "val", None)}
    lines = [f"# The zoo zero-shot ({date.today()})", "",
             "- each member as `python -m kit zoo` scores it: zero-shot checkpoint of its preset (`ppocr_cpu`: "
             "1280 px, padded to a multiple of 32, default postprocess), ONNX Runtime (the default backend on a CPU); "
             "ms per image: prediction and postprocess, not the metric; dH in points against the best member, "
             "paired bootstrap 95% interval", machine_and_command("bench.zoo"), ""]
    for title, (folder, split, limit) in sets.items():
        if not (folder / "jsons").is_dir() and folder != SYNTH_DIR:
            lines += [f"## {title}", "", f"{folder} not found: skipped", ""]
            continue
        records = load_split(resolve_data_dir(folder, announce=False), split)[0][:limit]
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as checkpoints:
            table = zoo_table(records, progress=False, folder=checkpoints)
        lines += [f"## {title}", "", f"{len(records)} images, {time.perf_counter() - start:.0f} s in all", "",
                  *table_lines(table), ""]
        print("\n".join(lines[-len(table) - 4:]), flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=("normalisation", "tables"))
    parser.add_argument("--images", type=int, default=100, help="SROIE train receipts to score on")
    args = parser.parse_args()
    if not (SROIE / "jsons").is_dir():
        raise SystemExit(f"{SROIE} not found")
    name = "zoo_normalisation" if args.what == "normalisation" else "zoo"
    write_results(RESULTS / f"{name}.md", (normalisation if args.what == "normalisation" else tables)(args.images))


if __name__ == "__main__":
    main()
