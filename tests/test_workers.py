"""Worker pools start cleanly after torch threads exist (forkserver), and give the serial results."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from kit.evaluation.cleval import evaluate
from kit.inference.threshold_search import CachedMap, threshold_search
from kit.paths import ROOT

STRESS = """
import numpy as np, torch
torch.set_num_threads(2)
(torch.randn(256, 256) @ torch.randn(256, 256)).sum()  # torch's thread pool now exists in this process
from tests.test_workers import maps_and_polygons
from kit.evaluation.cleval import evaluate
from kit.inference.threshold_search import threshold_search
maps, gt, pred = maps_and_polygons()
for _ in range(ROUNDS):
    threshold_search(maps, [0.3, 0.5], [0.5, 0.6], [1.5, 2.0], workers=2, progress=False)
    evaluate(gt, pred, workers=2)
print("done")
"""


def maps_and_polygons(n: int = 6) -> tuple[list[CachedMap], dict, dict]:
    """Probability maps with one word-sized blob each, their GT boxes, and slightly shifted predictions."""
    maps, gt, pred = [], {}, {}
    for i in range(n):
        prob = np.zeros((64, 96), np.float32)
        prob[20:30, 10 + i:60 + i] = 0.9
        box = np.array([[8 + i, 18], [62 + i, 18], [62 + i, 32], [8 + i, 32]], np.float64)
        maps.append(CachedMap(f"img{i}", prob.astype(np.float16), (1.0, 1.0), (96, 64), [box]))
        gt[f"img{i}"], pred[f"img{i}"] = [box], [box + 1.0]
    return maps, gt, pred


def test_pooled_results_equal_the_serial_ones() -> None:
    maps, gt, pred = maps_and_polygons()
    serial = threshold_search(maps, [0.3, 0.5], [0.5, 0.6], [1.5, 2.0], workers=1, progress=False)
    pooled = threshold_search(maps, [0.3, 0.5], [0.5, 0.6], [1.5, 2.0], workers=2, progress=False)
    assert serial.equals(pooled) and serial["hmean"].iloc[0] > 0.5
    assert evaluate(gt, pred, workers=2).hmean == evaluate(gt, pred, workers=1).hmean


@pytest.mark.slow
def test_pools_after_torch_threads_never_hang() -> None:
    """Twenty rounds of the pooled search and metric in a process whose torch threads already run."""
    script = STRESS.replace("ROUNDS", "20")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip() == "done", out.stderr[-2000:]
