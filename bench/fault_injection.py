"""Kill training at random moments (SIGKILL, saves included), resume, and check the run ends as if never killed.

Run from the project root: ``python -m bench.fault_injection [--trials 20] [--seed 0]``. A tiny run
(preset ``smoke``: ResNet-18 at 128-160 px, 4 train / 2 val synthetic receipts, 3 epochs, one
thread, no loader workers, so the loop is deterministic) is trained once uninterrupted as the
reference. Each trial starts it again, kills the process with SIGKILL at a random moment of its
run time, notes whether the kill landed inside a checkpoint save (its temporary file was left
behind), then resumes from ``last.ckpt`` (or, when no epoch had finished, starts again with
``--overwrite``, as the kit's refusal says) until the run ends, and compares the learning curve
and the final weights with the reference, bitwise. Writes ``bench/results/fault_injection.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from bench import markdown, write_results
from kit.data.synth import generate_dataset
from kit.model.checkpoint import Checkpoint
from kit.paths import ROOT

RESULTS = ROOT / "bench" / "results" / "fault_injection.md"
CURVE = ["epoch", "lr", "size", "loss_total", "loss_prob", "loss_thresh", "loss_binary", "val_hmean"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def command(data: Path, out: Path, run: str, resume: Path | None = None) -> list[str]:
    """``python -m kit train`` for the tiny deterministic run (or its resumption)."""
    if resume is not None:
        return [sys.executable, "-m", "kit", "train", "--resume", str(resume)]
    settings = {"data_dir": str(data), "output_dir": str(out), "run_name": run, "epochs": 3, "batch_size": 2,
                "max_train_images": 4, "max_val_images": 2, "schedule": [[0, 128], [2, 160]], "num_workers": 0,
                "lr": 1e-3}
    return [sys.executable, "-m", "kit", "train", "--preset", "smoke",
            *(arg for k, v in settings.items() for arg in ("--set", f"{k}={v!r}"))]


def final_state(run_dir: Path) -> tuple[pd.DataFrame, dict[str, torch.Tensor]]:
    """The run's learning curve and its last weights."""
    return pd.read_csv(run_dir / "metrics.csv")[CURVE], Checkpoint.load(run_dir / "checkpoints" / "last.ckpt").weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = generate_dataset(Path(tmp) / "synth", {"train": 4, "val": 2}, seed=0, workers=1)
        out = Path(tmp) / "runs"
        started = time.perf_counter()
        subprocess.run(command(data, out, "reference"), env=ENV, check=True, capture_output=True, cwd=ROOT)
        duration = time.perf_counter() - started
        curve, weights = final_state(out / "reference")
        finished_first = 0
        while len(rows) < args.trials:
            run, delay = f"trial{len(rows) + finished_first}", rng.uniform(0.05, 1.0) * duration
            victim = subprocess.Popen(command(data, out, run), env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            time.sleep(delay)
            if victim.poll() is not None:  # it ended before the kill: not a trial (the machine ran faster)
                finished_first += 1
                continue
            victim.kill()
            victim.wait()
            checkpoints = out / run / "checkpoints"
            in_save = any(checkpoints.glob(".*.tmp")) if checkpoints.is_dir() else False
            last = checkpoints / "last.ckpt"
            epoch = Checkpoint.load(last).epoch if last.is_file() else None
            # no last.ckpt: no epoch finished (a kill between the first best checkpoint and last.ckpt leaves only
            # the former), so the run starts again, replacing its folder as the kit's message says
            again = command(data, out, run, resume=last if last.is_file() else None) + (
                [] if last.is_file() else ["--overwrite"])
            finished = subprocess.run(again, env=ENV, capture_output=True, text=True, cwd=ROOT)
            ok, diff = False, float("nan")
            if finished.returncode == 0:
                got_curve, got_weights = final_state(out / run)
                diff = max((got_weights[k].double() - v.double()).abs().max().item() for k, v in weights.items())
                ok = got_curve.equals(curve) and diff == 0.0
            rows.append({"trial": len(rows), "kill_s": round(delay, 1),
                         "inside_a_save": in_save, "resumed_from_epoch": epoch, "resume_rc": finished.returncode,
                         "curve_equal": ok, "max_abs_weight_diff": diff,
                         "error": finished.stderr.strip().splitlines()[-1][:120] if finished.returncode else ""})
    table = pd.DataFrame(rows)
    survived, in_save = int(table["curve_equal"].sum()), int(table["inside_a_save"].sum())
    early = int(table["resumed_from_epoch"].isna().sum())
    lines = [
        "# Fault injection: SIGKILL during training, then resume",
        "",
        f"- run: preset `smoke` (ResNet-18), 3 epochs of 4 synthetic receipts at 128/160 px, one thread, no loader "
        f"workers; uninterrupted it takes {duration:.0f} s (process start included)",
        f"- {args.trials} trials, each killed (SIGKILL) at a uniformly random moment of that time, then resumed from "
        "`last.ckpt` (afresh with `--overwrite` when no epoch had finished) to the end; equal = the learning curve "
        "and every final weight bitwise equal to the uninterrupted run's",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores; command: "
        f"`python -m bench.fault_injection {' '.join(sys.argv[1:])}`",
        "",
        f"**Survived: {survived} / {len(table)}** (killed inside a checkpoint save: {in_save}; before any epoch "
        f"finished: {early}; draws where the run ended before its kill, not counted: {finished_first})",
        "",
        *markdown(table, list(table.columns)),
    ]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
