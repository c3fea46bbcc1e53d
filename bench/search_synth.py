"""A hyper-parameter search that finds something: PP-OCR fine-tuned on the synthetic receipts (preset
``ppocr_synth``, which detects words from its first epoch), lr and the postprocess thresholds searched by Optuna's
TPE with median pruning, two worker processes sharing one journal-file study (``python -m kit search --jobs 2``).

Run from the project root: ``python -m bench.search_synth [--trials 6]``. Each trial trains 2 epochs on the first
24 train receipts and validates on the first 10 val receipts (the search's own folder
``outputs/bench-search-synth``, replaced each run). Writes ``bench/results/search_synth.md``: the trials, the paired
comparison of the best ones, and the wall time of the whole search on this machine.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time

import optuna

from bench import markdown, write_results
from kit.data.synth import resolve_data_dir
from kit.experiments.search import compare_trials, storage_for, trials_table
from kit.paths import OUTPUTS, ROOT, SYNTH_DIR

RESULTS = ROOT / "bench" / "results" / "search_synth.md"
OUT = OUTPUTS / "bench-search-synth"
SPACE = ["lr=log:2e-5:5e-4", "postprocess.thresh=float:0.2:0.4", "postprocess.box_thresh=float:0.4:0.7"]
FIXED = {"epochs": 2, "t_max": 2, "max_train_images": 24, "max_val_images": 10, "num_workers": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    data = resolve_data_dir(SYNTH_DIR)
    if OUT.exists():
        print(f"replacing the benchmark's own folder {OUT}")
        shutil.rmtree(OUT)
    command = [sys.executable, "-m", "kit", "search", "--study", "synth", "--preset", "ppocr_synth",
               "--trials", str(args.trials), "--jobs", str(args.jobs), "--out", str(OUT), "--seed", "0",
               *[arg for p in SPACE for arg in ("--param", p)],
               *[arg for k, v in {**FIXED, "data_dir": str(data)}.items() for arg in ("--set", f"{k}={v!r}")]]
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True)
    minutes = (time.perf_counter() - start) / 60
    study = optuna.load_study(study_name="synth", storage=storage_for(None, OUT))
    table = trials_table(study)
    table["lr"] = table["lr"].map("{:.2e}".format)  # learning rates need more than four decimals
    compared = compare_trials(study).reset_index()
    lines = [
        "# Hyper-parameter search: PP-OCR fine-tuned on the synthetic receipts, two workers, one study",
        "",
        f"- `python -m kit search --study synth --preset ppocr_synth --trials {args.trials} --jobs {args.jobs} "
        f"--seed 0` over {', '.join(f'`{p}`' for p in SPACE)}; fixed: "
        f"{', '.join(f'{k}={v}' for k, v in FIXED.items())}; TPE sampler, median pruner",
        f"- {args.jobs} worker processes on the 2-core box sharing one journal file; the whole search took "
        f"{minutes:.1f} min (command: `python -m bench.search_synth`)",
        "",
        "## Trials",
        "",
        *markdown(table, ["trial", "state", "val_hmean", "val_precision", "val_recall", "epochs_run", "worker",
                          *[p.split("=")[0] for p in SPACE]]),
        "",
        "## The best trials against the best (paired bootstrap over the 10 val receipts, dH in points)",
        "",
        *markdown(compared, ["trial", "hmean", "dH", "dH_low95", "dH_high95", "verdict"]),
    ]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
