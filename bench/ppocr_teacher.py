"""Issue 20's target, measured: the ``ppocr_cpu`` fine-tune against zero-shot PP-OCR after every epoch, on all val.

The preset is PaddleOCR's fine-tuning recipe (dice + focal, lr 6.25e-5 warmed up per step, EMA, no threshold
branch) with distillation from its own zero-shot detector (``teacher="start"``, :mod:`kit.training.teacher`).
This trains it on the SROIE train receipts (all 400, or the first 400 - N with ``--held-out N``, whose last N
receipts, which no model saw, are then scored too: generalisation told apart from fitting val), keeps every
epoch's checkpoint (the EMA weights validation scores), and scores each one and zero-shot PP-OCR at the preset's
postprocess on all 100 val receipts, with the paired 95% interval against zero-shot, the error counts and the
training minutes. Validation during training (the first 50 val receipts) only picks the best epoch; nothing is
searched. ``--set KEY=VALUE`` changes the recipe (``--set teacher=none``: the recipe without its teacher);
``--preset ppocr_cpu_v1 --set teacher=start``: the teacher alone, on the first CPU recipe. Run from the project
root: ``python -m bench.ppocr_teacher [--preset P] [--held-out N] [--set ...] [--run NAME] [--results FILE.md]``;
the run is ``outputs/bench-teacher`` (``--run``). Writes ``bench/results/ppocr_teacher.md``. Needs
``../shared/data/sroie``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from bench import machine_and_command, markdown, write_results
from bench.shared import SROIE, sroie_or_exit, zero_shot
from kit.cli import parse_overrides
from kit.data.annotations import ImageRecord, load_split
from kit.evaluation.cleval import aggregate
from kit.evaluation.per_image import ImageResult
from kit.evaluation.significance import paired_bootstrap
from kit.inference.predict import Predictor, evaluate_predictor
from kit.paths import OUTPUTS
from kit.reporting.error_analysis import taxonomy
from kit.training.config import resolve_config
from kit.training.run import train

RESULTS = Path(__file__).parent / "results" / "ppocr_teacher.md"
ZERO = "zero-shot PP-OCR"


def score(checkpoint: Path, records: list[ImageRecord]) -> tuple[dict[str, Any], dict[str, ImageResult]]:
    """Scores (P, R, H and the error counts) and per-image results of one checkpoint as it runs by default."""
    per_image: dict[str, ImageResult] = {}
    scores = evaluate_predictor(Predictor.load([checkpoint]), records, progress=False, per_image=per_image)
    return {**scores, **taxonomy(aggregate(per_image))}, per_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="ppocr_cpu", help="the recipe to train (default: ppocr_cpu)")
    parser.add_argument("--held-out", type=int, default=0, help="last N train receipts kept out of training")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a change to the preset")
    parser.add_argument("--run", default="bench-teacher", help="the run's name under outputs/")
    parser.add_argument("--results", default=RESULTS.name, metavar="FILE.md", help="the results file in bench/results/")
    args = parser.parse_args()
    val = sroie_or_exit()[0]
    train_records = load_split(SROIE, "train")[0]
    sets = {"val": val, **({"held-out train": train_records[-args.held_out:]} if args.held_out else {})}
    config = resolve_config(args.preset, run_name=args.run, data_dir=str(SROIE),
                            max_train_images=len(train_records) - args.held_out, **parse_overrides(args.set))
    epochs_dir = OUTPUTS / args.run / "epochs"

    def keep(row: dict[str, Any]) -> bool:
        """Keep every epoch's weights (the run itself keeps the best and the last)."""
        epochs_dir.mkdir(exist_ok=True)
        shutil.copyfile(OUTPUTS / args.run / "checkpoints" / "last.ckpt", epochs_dir / f"epoch-{row['epoch']:02d}.ckpt")
        return False

    run = train(config, overwrite=True, on_epoch=keep)
    minutes = run.metrics["epoch_time_s"].cumsum() / 60
    candidates = {ZERO: zero_shot(), **{f"epoch {e}": epochs_dir / f"epoch-{e:02d}.ckpt" for e in run.metrics["epoch"]}}
    results = {(c, s): score(path, records) for c, path in candidates.items() for s, records in sets.items()}
    rows, gains = [], []
    for (candidate, set_name), (scores, per_image) in results.items():
        row = {"candidate": candidate + (" (best)" if candidate == f"epoch {run.summary['best_epoch']}" else ""),
               "set": set_name, **{k: scores[k] for k in ("precision", "recall", "hmean")}, "dH [95%]": "baseline",
               **{k: scores[k] for k in ("missed", "false_positives", "split", "merged")}, "train min": "-"}
        if candidate != ZERO:
            gain = paired_bootstrap(results[ZERO, set_name][1], per_image, names=(ZERO, f"{candidate}, {set_name}"))
            gains.append(str(gain))
            row["dH [95%]"] = (f"{gain.diff['hmean'] * 100:+.2f} [{gain.low['hmean'] * 100:+.2f}, "
                               f"{gain.high['hmean'] * 100:+.2f}]")
            row["train min"] = f"{minutes[int(candidate.split()[1])]:.1f}"
        rows.append(row)
    curve = run.metrics[["epoch", "lr", "loss_total", "val_hmean", "epoch_time_s"]].assign(
        lr=run.metrics["lr"].map("{:.2e}".format))  # the lr at the epoch's start: below the table's 4 places
    lines = [
        f"# The {args.preset} fine-tune against zero-shot PP-OCR, every epoch, on all val receipts",
        "",
        f"- recipe: `{args.preset}`{''.join(f', {item}' for item in args.set)} (teacher {config.teacher!r}, prob loss "
        f"{config.loss.prob_loss}, lr {config.lr:g} per {config.lr_interval} with {config.warmup_epochs} warm-up "
        f"epoch(s), EMA {config.ema_decay}); {config.epochs} epochs on the first {config.max_train_images} SROIE "
        f"train receipts; {run.summary['train_time_s'] / 60:.1f} minutes in all with validation on the first "
        f"{config.max_val_images} val receipts; best epoch {run.summary['best_epoch']}",
        f"- scored: every epoch's checkpoint (EMA weights) and zero-shot PP-OCR at the preset's postprocess "
        f"(thresh {config.postprocess.thresh}, box_thresh {config.postprocess.box_thresh}, unclip "
        f"{config.postprocess.unclip_ratio}), each padded as its checkpoint says (zero-shot to 32, the fine-tune to a "
        f"square, as it was validated), on {', '.join(f'{len(r)} {s} receipts' for s, r in sets.items())}; dH in "
        "H-mean points against zero-shot with the paired 95% bootstrap interval; train min: cumulative, validation "
        "included",
        machine_and_command("bench.ppocr_teacher"),
        "",
        *markdown(pd.DataFrame(rows), list(rows[0])),
        "",
        "Paired differences against zero-shot:",
        "",
        *(f"- {gain}" for gain in gains),
        "",
        "The run's own validation (first val receipts, the preset's postprocess):",
        "",
        *markdown(curve, list(curve.columns)),
    ]
    write_results(RESULTS.with_name(args.results), lines)


if __name__ == "__main__":
    main()
