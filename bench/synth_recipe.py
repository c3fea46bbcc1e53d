"""The demo's fine-tune with issue 20's recipe: does PaddleOCR's recipe, or ``ppocr_cpu``'s teacher, win on the
word-level receipts too?

Run from the project root: ``python -m bench.synth_recipe [--seeds 2]``. Trains PP-OCRv6 det on the demo's
synthetic receipts (``data/synth``, word-level labels) exactly as the demo does (preset ``ppocr_synth``: 48
train receipts, 2 epochs at 960 px) and the same with the changes of ``bench.shared.RECIPE``
(dice + focal on the probability map, PaddleOCR's lr with a per-step warm-up, EMA with a warmed-up decay, no
threshold branch), the same with distillation from zero-shot PP-OCR (``teacher="start"``), and with both (what
``ppocr_cpu`` trains on SROIE), each with ``--seeds`` seeds, then scores every run on all 30 val receipts at its own
postprocess: each against the demo preset's first seed with the paired 95% interval, beside zero-shot PP-OCR.
Writes ``bench/results/synth_recipe.md``; the runs are ``outputs/bench-synth-recipe-*``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench import machine_and_command, markdown, write_results
from bench.shared import COLUMNS, RECIPE, together
from kit.data.annotations import load_split
from kit.data.synth import resolve_data_dir
from kit.inference.candidates import Choice, compare_candidates
from kit.paths import ROOT, SYNTH_DIR
from kit.training.config import config_for, resolve_config
from kit.training.run import train, zero_shot_checkpoint

RESULTS = ROOT / "bench" / "results" / "synth_recipe.md"
PRESET = "ppocr_synth (the demo)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=2, help="trainings per variant (seeds 0..N-1)")
    args = parser.parse_args()
    data = resolve_data_dir(SYNTH_DIR)
    name, change = together(RECIPE)
    variants = {PRESET: {}, "ppocr_synth + recipe": change, "ppocr_synth + teacher": {"teacher": "start"},
                "ppocr_synth + recipe + teacher": {**change, "teacher": "start"}}
    runs = {f"{variant}, seed {seed}": train(resolve_config(
                "ppocr_synth", run_name=f"bench-synth-recipe-{i}-{seed}", data_dir=str(data), seed=seed, **overrides),
                overwrite=True)
            for i, (variant, overrides) in enumerate(variants.items()) for seed in range(args.seeds)}
    val = load_split(data, "val")[0]
    with tempfile.TemporaryDirectory() as tmp:
        zero_shot = zero_shot_checkpoint(config_for("ppocr_det", eval_size=960)).save(Path(tmp) / "zero-shot.ckpt")
        choices = [Choice("zero-shot PP-OCR", [str(zero_shot)]),
                   *(Choice(run_name, [str(run.best_checkpoint)]) for run_name, run in runs.items())]
        table = compare_candidates(choices, val, baseline=f"{PRESET}, seed 0")
    table["train_min"] = table["candidate"].map({n: r.summary["train_time_s"] / 60 for n, r in runs.items()})
    table["after_epoch_0"] = table["candidate"].map({n: r.metrics["val_hmean"].iloc[0] for n, r in runs.items()})
    lines = [
        "# The demo's fine-tune with issue 20's recipe, on the word-level synthetic receipts",
        "",
        f"- data: `data/synth` (the demo's), preset `ppocr_synth`: the first 48 train receipts, 2 epochs at 960 px, "
        f"validation during training on 10 val receipts; `+ recipe`: {name.removeprefix('together: ')}; `+ teacher`: "
        "zero-shot PP-OCR's kernels inside the labelled words (`teacher='start'`)",
        f"- scored on all {len(val)} val receipts at each checkpoint's own postprocess; dH in H-mean points against "
        f"`{PRESET}, seed 0` with the paired 95% bootstrap interval (over receipts, not over seeds: compare the "
        "seeds of one variant for the training noise); `after_epoch_0`: val H-mean on the 10 receipts after epoch 0",
        machine_and_command("bench.synth_recipe"),
        "",
        *markdown(table, [*COLUMNS, "train_min", "after_epoch_0"]),
    ]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
