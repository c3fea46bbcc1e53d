"""Run comparison: leaderboard-style tables from ``outputs/runs.csv``, recorded test / LB scores and measurements.

The reports compare models by rank, parameters, val / test / leaderboard H-mean, the gaps
between them, the precision-recall gap, inference ms/image, peak memory, training time and
score per million parameters. ``runs.csv`` holds what training knows; test and leaderboard
scores come later and are recorded against a run in ``outputs/scores.csv``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kit.checkpoint import Checkpoint
from kit.paths import OUTPUTS
from kit.runtime import peak_memory_mb

SCORES_CSV = OUTPUTS / "scores.csv"


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
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return table


def comparison_table(runs: pd.DataFrame, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """The reports' table, best first by the most final score available (LB, else test, else val).

    H-means are shown in points (x100); gaps are later minus earlier (val -> test, test -> LB,
    val -> LB) and precision minus recall; score per million parameters uses the same final score.
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
    out = out.assign(_final=final).sort_values("_final", ascending=False).drop(columns="_final")
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out.reset_index(drop=True)


@torch.no_grad()
def measure_inference(checkpoint: str | Path, size: int | None = None, repeats: int = 10,
                      device: str | None = None) -> dict[str, float]:
    """Inference ms/image (network forward at ``size``, batch 1, after warm-up) and peak memory in MB."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    loaded = Checkpoint.load(checkpoint, device)
    model, size = loaded.build_model(device), size or loaded.eval_size
    images = torch.randn(1, 3, size, size, device=device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    model(images)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        model(images)
    sync()
    ms = 1000 * (time.perf_counter() - start) / repeats
    memory = peak_memory_mb(torch.device(device))
    return {"ms_per_image": ms, "inference_memory_mb": memory, "size": size, "device": device}
