"""The notebook pipeline run headlessly with papermill: one notebook, the main job (``python -m kit demo``)
and a report's sequence (``python -m kit reproduce``). Notebook 05 predicts with the choice notebook 04 saved."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import papermill

from kit.compare import SCORES_CSV, comparison_table, run_per_image
from kit.errors import InputError
from kit.files import write_csv
from kit.paths import CHOICE_FILE, OUTPUTS, ROOT
from kit.presets import REPORT_PRESETS

NOTEBOOK_DIR = ROOT / "notebooks"
#: The main job's training run: PaddleOCR's pretrained detector fine-tuned on the synthetic receipts.
DEMO_RUN = "outputs/demo-ppocr"
#: The main job on the embedded default data: notebook and its parameters, in order.
MAIN_JOB: list[tuple[str, dict[str, Any]]] = [
    ("01_eda.ipynb", {"data_dir": "data/synth", "split": "train"}),
    ("02_train.ipynb", {"arch": "ppocr_det", "preset": "ppocr_synth", "data_dir": "data/synth",
                        "run_name": "demo-ppocr", "overwrite": True}),  # the demo owns its run (and says so)
    ("03_error_analysis.ipynb", {"checkpoints": [f"{DEMO_RUN}/checkpoints/best-*.ckpt"], "data_dir": "data/synth",
                                 "max_images": 10}),
    ("04_ensemble.ipynb", {"checkpoints": [f"{DEMO_RUN}/checkpoints/best-*.ckpt", f"{DEMO_RUN}/checkpoints/last.ckpt"],
                           "data_dir": "data/synth", "max_images": 10, "output_dir": "outputs/ensemble"}),
    ("05_submission.ipynb", {"choice": "outputs/ensemble/choice.json", "data_dir": "data/synth",
                             "out_csv": "outputs/submission.csv"}),
]


#: Names IPython puts in a kernel's namespace that are neither private nor callable.
_KERNEL_NAMES = {"In", "Out"}


def declared_parameters(name: str) -> list[str]:
    """The parameters ``notebooks/<name>`` declares in its ``parameters`` cell (papermill's reading of it)."""
    return list(papermill.inspect_notebook(str(NOTEBOOK_DIR / name)))


def _reject_unknown(names: list[str], notebook: str) -> None:
    if names:
        raise InputError(f"{notebook}: unknown parameter(s) {sorted(names)} (papermill would ignore them); "
                         f"its parameters: {', '.join(declared_parameters(notebook))}")


def check_parameters(namespace: dict[str, Any], notebook: str) -> None:
    """Run in a notebook's own cell right after its parameters, before any import: papermill injects a parameter
    the notebook does not declare as one more variable, so a typo (``-p eopchs 3``) would silently train with the
    default. Every public, non-callable, non-module name there must be a declared parameter."""
    known = set(declared_parameters(notebook)) | _KERNEL_NAMES
    _reject_unknown([k for k, v in namespace.items()
                     if not k.startswith("_") and k not in known and not callable(v) and not isinstance(v, ModuleType)],
                    notebook)


def run_notebook(name: str, out_dir: Path | str, parameters: dict[str, Any] | None = None,
                 progress: bool = True, out_name: str | None = None, stream: bool = False) -> Path:
    """Execute ``notebooks/<name>`` with ``parameters`` into ``out_dir/<out_name or name>``; cwd is the project root.

    ``progress`` shows papermill's bar over cells; ``stream`` instead passes the notebook's own
    stderr (the kit's progress bars and warnings: training epochs, prediction) to this console
    as it comes. papermill raises if a cell fails; the executed notebook, up to the failing cell, is kept.
    """
    declared = set(declared_parameters(name))
    _reject_unknown([k for k in parameters or {} if k not in declared], name)  # before a kernel starts
    out_path = Path(out_dir) / (out_name or name)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(NOTEBOOK_DIR / name), str(out_path), parameters=parameters or {},
                               cwd=str(ROOT), progress_bar=progress and not stream, kernel_name="python3",
                               stderr_file=sys.stderr if stream else None)
    return out_path


def run_main_job(out_dir: Path | str = OUTPUTS / "notebooks") -> list[Path]:
    """Run every notebook of :data:`MAIN_JOB` in order, streaming its progress and printing its time; stops at the
    first failure."""
    paths, started = [], time.perf_counter()
    for number, (name, params) in enumerate(MAIN_JOB, start=1):
        began = time.perf_counter()
        print(f"[{number}/{len(MAIN_JOB)}] {name} ...", flush=True)
        paths.append(run_notebook(name, out_dir, params, stream=True))
        print(f"[{number}/{len(MAIN_JOB)}] {name}: {time.perf_counter() - began:.0f} s", flush=True)
    print(f"main job: {(time.perf_counter() - started) / 60:.1f} min in all", flush=True)
    return paths


def reproduce(report: str, data_dir: str = "data/receipts", smoke: bool = False,
              out_dir: Path | str | None = None, train_overrides: dict[str, Any] | None = None,
              max_images: int | None = None) -> Path:
    """A report's notebook sequence (01 -> 02 -> 03 -> 04 -> 05) with its preset, then its comparison table.

    ``smoke`` swaps in the CPU smoke preset (ResNet-18, small images) so the sequence
    finishes on a CPU; otherwise it is the report's real run (a GPU and the competition data).
    ``train_overrides`` go to notebook 02; ``max_images`` caps the images notebooks 03 and 04 score.
    """
    if report not in REPORT_PRESETS:
        raise InputError(f"unknown report {report!r}; the reports' presets are {', '.join(REPORT_PRESETS)}")
    name = f"reproduce-{report}{'-smoke' if smoke else ''}"
    out = Path(out_dir) if out_dir else OUTPUTS / name
    train_params = {"arch": "resnet18", "preset": "smoke"} if smoke else {"arch": report, "preset": report}
    run_dir = out / "runs"
    best = str(run_dir / name / "checkpoints" / "best-*.ckpt")
    sequence = [
        ("01_eda.ipynb", {"data_dir": data_dir}),
        ("02_train.ipynb", {**train_params, "data_dir": data_dir, "run_name": name, "output_dir": str(run_dir),
                            "overwrite": True, **(train_overrides or {})}),  # reproduce owns its run folder
        ("03_error_analysis.ipynb", {"checkpoints": [best], "data_dir": data_dir, "max_images": max_images}),
        ("04_ensemble.ipynb", {"checkpoints": [best, str(run_dir / name / "checkpoints" / "last.ckpt")],
                               "data_dir": data_dir, "output_dir": str(out / "ensemble"), "max_images": max_images}),
        ("05_submission.ipynb", {"choice": str(out / "ensemble" / CHOICE_FILE), "data_dir": data_dir,
                                 "out_csv": str(out / "submission.csv")}),
    ]
    for notebook, params in sequence:
        run_notebook(notebook, out / "notebooks", params)
    scores = pd.read_csv(SCORES_CSV) if SCORES_CSV.is_file() else None
    runs = pd.read_csv(run_dir / "runs.csv")
    write_csv(comparison_table(runs, scores, run_per_image(run_dir, runs["run"])), out / "comparison.csv", index=False)
    return out


def demo_command(args: argparse.Namespace) -> None:
    """``python -m kit demo``: the main job, each notebook's time and the total on the console."""
    run_main_job(args.out)


def reproduce_command(args: argparse.Namespace) -> None:
    """``python -m kit reproduce REPORT``: where the notebooks and the comparison table went."""
    print(f"outputs in {reproduce(args.report, args.data_dir, args.smoke, args.out)}")
