"""Where does the fine-tune's gain go? The same detectors on held-out *train* receipts and on val.

Every PP-OCR fine-tune so far lands within noise of zero-shot on SROIE val, yet the postprocess searched on
held-out train receipts favoured it there. This trains issue 20's best recipe (``bench.ppocr_train_search``'s
``RECIPE``) on the first 400 - N SROIE train receipts (``--held-out N``, default 80; run
``outputs/bench-generalise``, reused when it holds a ``last.ckpt``) and scores, at the preset's postprocess, on
the last N train receipts (no model saw them) and on all 100 val receipts: zero-shot PP-OCR, the run's best
checkpoint (its EMA weights), the trained weights of its last epoch, and their interpolations with the zero-shot
weights (WiSE-FT: ``(1 - a) * zero-shot + a * fine-tuned``). Each against zero-shot with the paired 95% interval
on both sets, and the val receipts the fine-tune loses most on. Run from the project root:
``python -m bench.ppocr_generalise [--held-out 80]``. Writes ``bench/results/ppocr_generalise.md``. Needs
``../shared/data/sroie``.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from bench import machine_and_command, markdown, write_results
from bench.shared import RECIPE, SROIE, sroie_or_exit, together
from kit.data.annotations import ImageRecord, load_split
from kit.evaluation.per_image import ImageResult
from kit.evaluation.significance import paired_bootstrap
from kit.inference.predict import Predictor, evaluate_predictor
from kit.model.checkpoint import Checkpoint
from kit.paths import OUTPUTS
from kit.training.config import config_for, resolve_config
from kit.training.run import train, zero_shot_checkpoint

RESULTS = Path(__file__).parent / "results" / "ppocr_generalise.md"
RUN = "bench-generalise"
#: Weights of the fine-tune in the interpolations with zero-shot.
ALPHAS = (0.25, 0.5, 0.75)
WORST = 8


def with_weights(fine: Checkpoint, weights: dict[str, torch.Tensor]) -> Checkpoint:
    """``fine``'s checkpoint holding ``weights``, for inference (no training state)."""
    return replace(fine, weights=weights, training_state=None, epoch=None)


def interpolate(zero: Checkpoint, weights: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * zero + alpha * weights`` (zero-shot's unused threshold head left out)."""
    return {k: torch.lerp(zero.weights[k].double(), v.double(), alpha).to(v.dtype) if v.is_floating_point() else v
            for k, v in weights.items()}


def score(path: Path, sets: dict[str, list[ImageRecord]]) -> dict[str, tuple[dict, dict[str, ImageResult]]]:
    """Scores and per-image results of one checkpoint on each set, at its own postprocess."""
    predictor = Predictor.load([path])
    out = {}
    for name, records in sets.items():
        per_image: dict[str, ImageResult] = {}
        out[name] = evaluate_predictor(predictor, records, progress=False, per_image=per_image), per_image
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--held-out", type=int, default=80, help="last N train receipts kept out of training")
    args = parser.parse_args()
    val = sroie_or_exit()[0]
    train_records = load_split(SROIE, "train")[0]
    sets = {"held-out train": train_records[-args.held_out:], "val": val}
    run_dir = OUTPUTS / RUN
    name, change = together(RECIPE)
    if not (run_dir / "checkpoints" / "last.ckpt").is_file():
        train(resolve_config("ppocr_cpu_v1", run_name=RUN, data_dir=str(SROIE),
                             max_train_images=len(train_records) - args.held_out, **change))
    last = Checkpoint.load(run_dir / "checkpoints" / "last.ckpt")
    best = sorted((run_dir / "checkpoints").glob("best-*.ckpt"))[0]
    trained = (last.training_state or {}).get("model_weights", last.weights)
    zero = zero_shot_checkpoint(config_for("ppocr_det"))
    with tempfile.TemporaryDirectory() as tmp:
        candidates = {"zero-shot PP-OCR": zero.save(Path(tmp) / "zero-shot.ckpt"),
                      f"best checkpoint ({best.name}, EMA weights)": best,
                      f"trained weights, last epoch ({last.epoch})": with_weights(last, trained).save(
                          Path(tmp) / "trained.ckpt"),
                      **{f"WiSE-FT a={a}": with_weights(last, interpolate(zero, trained, a)).save(
                          Path(tmp) / f"wise-{a}.ckpt") for a in ALPHAS}}
        scores = {candidate: score(path, sets) for candidate, path in candidates.items()}
    base = scores["zero-shot PP-OCR"]
    rows, gains = [], {}
    for candidate, result in scores.items():
        row = {"candidate": candidate}
        for set_name, (summary, per_image) in result.items():
            row[f"{set_name} H"] = summary["hmean"]
            row[f"{set_name} P"] = summary["precision"]
            row[f"{set_name} R"] = summary["recall"]
            if candidate == "zero-shot PP-OCR":
                row[f"{set_name} dH [95%]"] = "baseline"
            else:
                gain = gains[candidate, set_name] = paired_bootstrap(base[set_name][1], per_image,
                                                                     names=("zero-shot", candidate))
                row[f"{set_name} dH [95%]"] = (f"{gain.diff['hmean'] * 100:+.2f} [{gain.low['hmean'] * 100:+.2f}, "
                                               f"{gain.high['hmean'] * 100:+.2f}]")
        rows.append(row)
    trained_name = next(c for c in scores if c.startswith("trained weights"))
    loss = gains[trained_name, "val"].per_image.sort_values()
    worst = pd.DataFrame({"receipt": loss.index[:WORST], "dH": loss.to_numpy()[:WORST] * 100,
                          "gt_words": [len(base["val"][1][r].word_links) for r in loss.index[:WORST]]})
    lines = [
        "# The fine-tune on held-out train receipts and on val: where the gain goes",
        "",
        f"- fine-tune: `ppocr_cpu_v1` with {name.removeprefix('together: ')}; run `outputs/{RUN}`, the first "
        f"{(last.train_config or {}).get('max_train_images')} SROIE train receipts, {len(last.history)} epochs "
        f"({sum(r['epoch_time_s'] for r in last.history) / 60:.1f} min with validation on the first 50 val receipts)",
        f"- scored at each checkpoint's own postprocess on the last {args.held_out} train receipts (in no model's "
        f"training) and on all {len(val)} val receipts; dH in H-mean points against zero-shot with the paired 95% "
        "bootstrap interval; WiSE-FT a: `(1 - a) * zero-shot + a * trained` weights",
        machine_and_command("bench.ppocr_generalise"),
        "",
        *markdown(pd.DataFrame(rows), list(rows[1])),
        "",
        "Paired differences against zero-shot:",
        "",
        *(f"- {set_name}: {gain}" for (_, set_name), gain in gains.items()),
        "",
        f"The {WORST} val receipts the trained weights lose most on (dH in H-mean points against zero-shot):",
        "",
        *markdown(worst, ["receipt", "dH", "gt_words"]),
    ]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
