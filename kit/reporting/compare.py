"""Run comparison: leaderboard-style tables from ``outputs/runs.csv``, recorded test / LB scores and measurements.

The reports compare models by rank, parameters, val / test / leaderboard H-mean, the gaps
between them, the precision-recall gap, inference ms/image, peak memory, training time and
score per million parameters. ``runs.csv`` holds what training knows; test and leaderboard
scores come later and are recorded against a run in ``outputs/scores.csv``. With the runs'
per-image val scores (each run folder's ``val_per_image.csv``) the table also says whether
each run differs from the best beyond the noise of which images are in val, and how large a
val -> test gap the choice of images alone can make (:mod:`kit.evaluation.significance`).

Command line: ``python -m kit compare A.json B.json --gt GT.json [--plot diff.png]`` compares
prediction sets (JSON or submission CSV) on the same images, or per-image result files
(``python -m kit metric --per-image``, ``val_per_image.csv``) without ``--gt``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from kit.errors import InputError
from kit.evaluation.cleval_files import evaluate_files, problem_lines
from kit.evaluation.per_image import PerImage, per_image_scores
from kit.evaluation.significance import TEST_IMAGES, against_baseline, gap_noise, leaderboard_splits, paired_bootstrap
from kit.files import write_csv
from kit.paths import OUTPUTS, VAL_PER_IMAGE
from kit.reporting.viz import plot_paired

SCORES_CSV = OUTPUTS / "scores.csv"


def markdown_table(table: pd.DataFrame, columns: Sequence[str] | None = None, index: str | None = None) -> list[str]:
    """A table's Markdown lines (those of ``columns`` it has; the index first as column ``index`` when named):
    floats to 4 places, missing values blank. The results files' and ``kit zoo``'s tables."""
    table = table.reset_index(names=index) if index else table
    columns = [c for c in (columns or table.columns) if c in table]

    def cell(value: object) -> str:
        return "" if value is None or (isinstance(value, float) and np.isnan(value)) else (
            f"{value:.4f}" if isinstance(value, float) else str(value))

    return ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |",
            *("| " + " | ".join(map(cell, r)) + " |" for r in table[columns].itertuples(index=False))]


def record_score(run: str, test_hmean: float | None = None, lb_hmean: float | None = None,
                 ms_per_image: float | None = None, inference_memory_mb: float | None = None,
                 path: Path = SCORES_CSV) -> pd.DataFrame:
    """Record (or update) scores and measurements of ``run``; H-means as fractions (0.9644)."""
    table = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["run"])
    values = {"test_hmean": test_hmean, "lb_hmean": lb_hmean, "ms_per_image": ms_per_image,
              "inference_memory_mb": inference_memory_mb}
    if run not in set(table["run"]):
        table = pd.concat([table, pd.DataFrame([{"run": run}])], ignore_index=True)
    for key, value in values.items():
        if value is not None:
            table.loc[table["run"] == run, key] = value
    write_csv(table, path, index=False)
    return table


def comparison_table(runs: pd.DataFrame, scores: pd.DataFrame | None = None,
                     per_image: Mapping[str, PerImage] | None = None, baseline: str | None = None,
                     n_test: int = TEST_IMAGES) -> pd.DataFrame:
    """The reports' table, best first by the most final score available (LB, else test, else val).

    H-means are shown in points (x100); gaps are later minus earlier (val -> test, test -> LB,
    val -> LB) and precision minus recall; score per million parameters uses the same final score.
    Given runs' ``per_image`` val scores (:func:`run_per_image`), each of those runs gets its
    paired difference from ``baseline`` (default: the best val H-mean) with its interval
    (:func:`kit.evaluation.significance.against_baseline`, on val images), and ``val_to_test_noise``: the
    half-width of the 95% band a val -> test gap of ``n_test`` test images has from the choice of images alone.
    """
    table = runs.copy()
    if scores is not None and len(scores):
        table = table.merge(scores, on="run", how="left", suffixes=("", "_recorded"))
    for column in ("test_hmean", "lb_hmean", "ms_per_image", "inference_memory_mb"):
        if column not in table:
            table[column] = np.nan
    out = pd.DataFrame({
        "model": table.get("arch", table["run"]),
        "run": table["run"],
        "params_M": table["params"] / 1e6,
        "val_H": 100 * table["val_hmean"],
        "test_H": 100 * table["test_hmean"],
        "LB_H": 100 * table["lb_hmean"],
    })
    out["val_to_test"] = out["test_H"] - out["val_H"]
    out["test_to_LB"] = out["LB_H"] - out["test_H"]
    out["val_to_LB"] = out["LB_H"] - out["val_H"]
    out["PR_gap"] = 100 * (table["val_precision"] - table["val_recall"])
    out["ms_per_image"] = table["ms_per_image"]
    out["peak_memory_mb"] = table["inference_memory_mb"].fillna(table.get("peak_memory_mb"))
    out["train_time_h"] = table.get("train_time_s", np.nan) / 3600
    final = out["LB_H"].fillna(out["test_H"]).fillna(out["val_H"])
    out["score_per_M_params"] = final / out["params_M"]
    if per_image:
        tables = {run: per_image_scores(source) for run, source in per_image.items()}  # each file read once
        paired = against_baseline(tables, baseline).drop(columns=["precision", "recall", "hmean"])
        paired["val_to_test_noise"] = [100 * gap_noise(tables[run], n_test)["val_to_test_band"]
                                       for run in paired.index]
        out = out.merge(paired, left_on="run", right_index=True, how="left")
    out = out.assign(_final=final).sort_values("_final", ascending=False).drop(columns="_final")
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out.reset_index(drop=True)


def run_per_image(runs_dir: Path | str, runs: Sequence[str]) -> dict[str, Path]:
    """The per-image val score files of ``runs`` in ``runs_dir`` (each run folder's ``val_per_image.csv``), where
    they exist (runs trained before the kit wrote them have none)."""
    files = {run: Path(runs_dir) / run / VAL_PER_IMAGE for run in dict.fromkeys(runs)}
    return {run: path for run, path in files.items() if path.is_file()}


def _sources(args: argparse.Namespace) -> dict[str, pd.DataFrame]:
    """Each input's per-image scores (scored against ``--gt`` when given), named by file stem (whole path when
    stems repeat)."""
    stems = [Path(p).stem for p in args.sets]
    names = args.names or (stems if len(set(stems)) == len(stems) else [str(p) for p in args.sets])
    if len(names) != len(args.sets):
        raise InputError(f"--names gives {len(names)} names for {len(args.sets)} inputs")
    sources = {}
    for name, path in zip(names, args.sets):
        if args.gt is None:
            sources[name] = per_image_scores(path)
            continue
        result = evaluate_files(args.gt, path)
        for line in problem_lines(result.problems):
            print(f"warning: {name}: {line}", file=sys.stderr)
        sources[name] = per_image_scores(result)
    return sources


def command(args: argparse.Namespace) -> None:
    """``python -m kit compare``: each set against the baseline, the leaderboard split noise, optional plots."""
    sources = _sources(args)
    table = against_baseline(sources, args.baseline, args.resamples, args.seed, args.confidence)
    baseline = table.index[table["verdict"] == "baseline"][0]
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4f}".format):
        print(table.to_string())
    print(f"\nintervals: paired bootstrap over {len(sources[baseline])} images, {args.resamples} resamples, "
          f"seed {args.seed}; dH, dP, dR in points; p_better: P(row > {baseline}); wins: images won-lost-tied; "
          "public_flip: share of 50/50 leaderboard splits whose public order reverses on the private half")
    spread = leaderboard_splits(sources[baseline], seed=args.seed).summary()
    noise = gap_noise(sources[baseline], args.test_images)
    print(f"{baseline}: public - private H-mean over random 50/50 splits of these images: sd "
          f"{100 * spread['public_minus_private_sd']:.2f} pts, 95% within [{100 * spread['low']:+.2f}, "
          f"{100 * spread['high']:+.2f}]; a val -> test gap on {args.test_images} test images is noise up to "
          f"+-{100 * noise['val_to_test_band']:.2f} pts (95%)")
    if args.plot:
        others = [name for name in table.index if name != baseline]
        for i, name in enumerate(others):
            path = args.plot if len(others) == 1 else args.plot.with_name(f"{args.plot.stem}_{i + 1}{args.plot.suffix}")
            path.parent.mkdir(parents=True, exist_ok=True)
            comparison = paired_bootstrap(sources[baseline], sources[name], args.resamples, args.seed,
                                          args.confidence, (baseline, name))
            plot_paired(comparison).savefig(path, dpi=120)
            print(f"plot: {name} vs {baseline} -> {path}")
