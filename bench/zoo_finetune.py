"""Issue 35's target, measured: a kit-trained model (or an ensemble holding one) against the best zoo member
zero-shot, on all 100 SROIE val receipts.

The run is ``python -m kit train --preset ppocr_zoo --set data_dir=../shared/data/sroie --set
run_name=bench-sroie-zoo`` (PP-OCRv4 mobile, the best member on *train* receipts, taught by the two best averaged;
trained on the 400 train receipts, validated on the first 50 val receipts, which only pick the best epoch). This
scores, at each checkpoint's own postprocess (nothing searched), every zoo member zero-shot, the run's best
checkpoint, and the ensemble declared before val was looked at: the fine-tune with its two teachers (map
average, equal weights). Every row carries its paired 95% interval against the best zero-shot member on val.
Writes ``bench/results/zoo_finetune.md``. Run from the project root: ``python -m bench.zoo_finetune [--run NAME]``.
"""

from __future__ import annotations

import argparse
from datetime import date

import pandas as pd

from bench import machine_and_command, markdown, write_results
from bench.shared import sroie_or_exit
from bench.zoo import RESULTS
from kit.experiments.zoo import zoo_checkpoint
from kit.inference.candidates import Choice, compare_candidates
from kit.model.checkpoint import Checkpoint
from kit.model.ppocr import DETECTORS, installed
from kit.paths import OUTPUTS

COLUMNS = ["candidate", "precision", "recall", "hmean", "split_words", "merging_boxes", "dH", "dH_low95",
           "dH_high95", "p_better", "wins", "verdict", "ms_per_image"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", default="bench-sroie-zoo", help="the training run under outputs/")
    args = parser.parse_args()
    val, _ = sroie_or_exit()
    run = OUTPUTS / args.run
    best = sorted((run / "checkpoints").glob("best-*.ckpt"))[-1]
    teachers = Checkpoint.load(best).train_config["teacher"]
    zoo = {name: str(zoo_checkpoint(name)) for name in DETECTORS if installed(name)}
    members = [Choice(f"zero-shot {name}", [path]) for name, path in zoo.items()]
    zero_shot = compare_candidates(members, val)  # against the best member on val: the bar to beat
    baseline = zero_shot.iloc[0]["candidate"]
    trained = [Choice(f"fine-tune ({best.name})", [str(best)]),
               Choice(f"fine-tune + its teachers {teachers} (map average)", [str(best), *(zoo[t] for t in teachers)])]
    table = compare_candidates([next(c for c in members if c.name == baseline), *trained], val, baseline=baseline)
    table = pd.concat([table, zero_shot.iloc[1:]]).reset_index(drop=True)
    metrics = pd.read_csv(run / "metrics.csv")
    minutes = metrics["epoch_time_s"].sum() / 60
    lines = [f"# The zoo's best start fine-tuned, against the best member zero-shot ({date.today()})", "",
             f"- run: `outputs/{args.run}` (preset `ppocr_zoo`), {len(metrics)} epochs, {minutes:.1f} training "
             f"minutes with validation on the first 50 val receipts; val H-mean by epoch "
             f"{', '.join(f'{h:.4f}' for h in metrics['val_hmean'])}; best checkpoint `{best.name}`",
             f"- scored on all {len(val)} SROIE val receipts at each checkpoint's own postprocess (nothing searched); "
             f"dH in H-mean points against `{baseline}` (the best member zero-shot on val), paired 95% bootstrap "
             "interval; an ensemble averages its members' maps with equal weights",
             machine_and_command("bench.zoo_finetune"), "", *markdown(table, COLUMNS), ""]
    write_results(RESULTS / "zoo_finetune.md", lines)


if __name__ == "__main__":
    main()
