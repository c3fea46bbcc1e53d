"""Sweeps: notebook 02 over a grid of settings with repeated seeds, through papermill.

Each execution is kept as an output notebook in the sweep folder; a ledger
(``sweep.csv``) records every run's grid point, seed, status, error and the worker that ran it. A failed run is
reported (its notebook and error kept), not lost, and does not stop the sweep; running the
same sweep again skips the completed runs and retries the failed ones. A member is claimed in the ledger, under
its file lock, before it runs: ``--jobs N`` workers (:mod:`kit.experiments.jobs`; one GPU each where there are
several), or the same command started on another machine sharing the folder, split the grid without running a
member twice; a member left "running" by a process that died on this machine is taken again (and resumed).
``summarize`` gives mean and standard deviation of val P/R/H per grid point; ``compare_points`` says whether grid
points differ beyond the noise of which images are in val: each point's per-image val scores
are averaged over its seeds, and each point is compared with the best (or a chosen baseline)
by a paired bootstrap over images (:mod:`kit.evaluation.significance`). The seeds' own spread is in
``summarize``'s standard deviation, not in that interval.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import traceback
import uuid
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from kit.evaluation.per_image import per_image_scores
from kit.evaluation.significance import against_baseline
from kit.experiments.jobs import run_workers, without_option
from kit.experiments.pipeline import run_notebook
from kit.files import lock_for, write_csv
from kit.paths import project_path
from kit.reporting.compare import run_per_image

LEDGER = "sweep.csv"
METRICS = ("val_precision", "val_recall", "val_hmean")


def grid_points(grid: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in order."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def point_name(point: dict[str, Any], seed: int) -> str:
    """A file-safe run name for a grid point and seed, e.g. ``weight_decay=8e-05_seed=1``."""
    parts = [f"{k}={json.dumps(v).replace(' ', '').replace('/', '-')}" for k, v in point.items()]
    return "_".join(parts + [f"seed={seed}"]).replace('"', "")


def _read_ledger(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["run", "status"])


def _write_row(path: Path, row: dict[str, Any]) -> None:
    """Put ``row`` in the ledger in place of its run's row (under the lock: the ledger is read fresh)."""
    with lock_for(path):
        ledger = _read_ledger(path)
        write_csv(pd.concat([ledger[ledger["run"] != row["run"]], pd.DataFrame([row])], ignore_index=True), path,
                  index=False)


def _alive(worker: str) -> bool:
    """Whether the worker (``host:pid``) may still be running: another host's always may; here, if its pid is; a
    row naming no worker, never."""
    host, _, pid = str(worker).rpartition(":")
    if not host or not pid.isdigit():
        return False
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _claim(path: Path, members: list[tuple[dict[str, Any], int]], generation: str) -> tuple[dict[str, Any], int] | None:
    """The first member nobody has done or is running, marked running by this process; None when none is left.

    A failed member is retried once per sweep ``generation`` (one command and the workers it started)."""
    with lock_for(path):
        ledger = _read_ledger(path).set_index("run", drop=False)
        for point, seed in members:
            name = point_name(point, seed)
            row = ledger.loc[name].to_dict() if name in ledger.index else {}
            status = row.get("status")
            if status == "done" or (status == "failed" and row.get("generation") == generation):
                continue
            if status == "running" and _alive(row.get("worker", "")):
                continue
            claimed = {"run": name, **{f"grid_{k}": json.dumps(v) for k, v in point.items()}, "seed": seed,
                       "status": "running", "error": "", "worker": f"{socket.gethostname()}:{os.getpid()}",
                       "generation": generation}
            write_csv(pd.concat([ledger[ledger["run"] != name], pd.DataFrame([claimed])], ignore_index=True), path,
                      index=False)
            return point, seed
    return None


def run_sweep(grid: dict[str, Sequence[Any]], seeds: Sequence[int], out_dir: str | Path,
              base: dict[str, Any] | None = None, notebook: str = "02_train.ipynb",
              generation: str | None = None) -> pd.DataFrame:
    """Run ``notebook`` for every grid point x seed (``base`` parameters underneath) that no other worker has
    claimed; return the ledger. Workers of one sweep share its ``generation``."""
    out = project_path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ledger_path = out / LEDGER
    generation = generation or uuid.uuid4().hex[:12]
    members = [(point, seed) for point in grid_points(grid) for seed in seeds]
    while (claimed := _claim(ledger_path, members, generation)) is not None:
        point, seed = claimed
        name = point_name(point, seed)
        params = {**(base or {}), **point, "seed": seed, "run_name": name, "output_dir": str(out / "runs")}
        last = out / "runs" / name / "checkpoints" / "last.ckpt"
        if last.is_file():  # a member that failed or was killed part-way continues where it stopped
            params["resume"] = str(last)
        row: dict[str, Any] = {"run": name, **{f"grid_{k}": json.dumps(v) for k, v in point.items()}, "seed": seed,
                               "worker": f"{socket.gethostname()}:{os.getpid()}", "generation": generation}
        try:
            run_notebook(notebook, out / "notebooks", params, progress=False, out_name=f"{name}.ipynb")
            row.update(status="done", error="")
        except Exception as err:  # a failed run is recorded with its error, the sweep goes on
            row.update(status="failed", error=f"{type(err).__name__}: {str(err).strip().splitlines()[-1][:300]}")
            (out / "notebooks" / f"{name}.error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        _write_row(ledger_path, row)
    return _read_ledger(ledger_path)


def sweep_results(out_dir: str | Path) -> pd.DataFrame:
    """The ledger joined with each completed run's summary row (from the sweep's ``runs/runs.csv``)."""
    out = project_path(out_dir)
    ledger = pd.read_csv(out / LEDGER)
    runs_csv = out / "runs" / "runs.csv"
    if not runs_csv.is_file():
        return ledger
    runs = pd.read_csv(runs_csv).drop_duplicates("run", keep="last")
    return ledger.merge(runs[["run", *METRICS, "best_epoch", "train_time_s"]], on="run", how="left")


def point_of(run: str) -> str:
    """The grid point of a run name: the name without its seed (``weight_decay=8e-05``)."""
    return run.rsplit("_seed=", 1)[0]


def compare_points(out_dir: str | Path, baseline: str | None = None) -> pd.DataFrame:
    """Each grid point against ``baseline`` (a point name; default: the best) with a paired bootstrap interval.

    A point's per-image val scores are the mean over its completed seeds of each run's
    ``val_per_image.csv``; ``seeds`` counts them.
    """
    out = project_path(out_dir)
    ledger = pd.read_csv(out / LEDGER)
    runs = ledger.loc[ledger["status"] == "done", "run"].tolist()
    found = run_per_image(out / "runs", runs)
    if not found:
        raise FileNotFoundError(f"no per-image val scores under {out / 'runs'}: the sweep has no completed runs "
                                "written by this kit")
    points: dict[str, list[pd.DataFrame]] = {}
    for run, path in found.items():
        points.setdefault(point_of(run), []).append(per_image_scores(path))
    per_point = {name: pd.concat(tables).groupby(level=0).mean() for name, tables in points.items()}
    table = against_baseline(per_point, baseline)
    table.insert(0, "seeds", [len(points[name]) for name in table.index])
    return table.rename_axis("point")


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation and count of val P/R/H per grid point over the completed seeds."""
    keys = [c for c in results.columns if c.startswith("grid_")]
    done = results[results["status"] == "done"]
    table = done.groupby(keys)[list(METRICS)].agg(["mean", "std", "count"])
    table.columns = [f"{metric}_{stat}" for metric, stat in table.columns]
    return table.reset_index().rename(columns={k: k[len("grid_"):] for k in keys})


def command(args: argparse.Namespace) -> None:
    """``python -m kit sweep``: run (or complete) the sweep (``--jobs N``: in N worker processes), then print its
    ledger's status and the summary."""
    generation = args.generation or uuid.uuid4().hex[:12]
    if args.jobs > 1:
        worker_args = without_option(without_option(args.argv, "--jobs"), "--generation")
        run_workers(["sweep", *worker_args, "--jobs", "1", "--generation", generation], args.jobs,
                    project_path(args.out) / "workers")
        ledger = _read_ledger(project_path(args.out) / LEDGER)
    else:
        ledger = run_sweep(args.grid, args.seeds, args.out, args.set, generation=generation)
    failed, running = ledger[ledger["status"] == "failed"], ledger[ledger["status"] == "running"]
    done = len(ledger) - len(failed) - len(running)
    print(f"{done} runs done, {len(failed)} failed" + (f", {len(running)} running elsewhere" if len(running) else "")
          + f" (ledger: {project_path(args.out) / LEDGER})")
    for _, row in failed.iterrows():
        print(f"failed: {row['run']}: {row['error']}")
    if not done:
        return
    print(summarize(sweep_results(args.out)).to_string(index=False))
    print("\npaired against the best point on the val images (dH in points, seeds averaged per image):")
    print(compare_points(args.out, args.baseline).to_string())
