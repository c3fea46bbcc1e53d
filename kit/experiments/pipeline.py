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

from kit.errors import InputError
from kit.files import write_csv
from kit.paths import CHOICE_FILE, OUTPUTS, ROOT
from kit.reporting.compare import SCORES_CSV, comparison_table, run_per_image
from kit.training.presets import REPORT_PRESETS

NOTEBOOK_DIR = ROOT / "notebooks"


NotebookSequence = list[tuple[str, dict[str, Any]]]  # (notebook, its parameters) in order


def notebook_sequence(data_dir: str, train: dict[str, Any], run_dir: Path | str, out_dir: Path | str,
                      max_images: int | None = None, eda: dict[str, Any] | None = None) -> NotebookSequence:
    """Notebooks 01 -> 05 and their parameters: 02 trains run ``train["run_name"]`` under ``run_dir`` (it owns
    that folder: ``overwrite``), 03 and 04 read its best (04: and last) checkpoint, 04's choice goes to
    ``out_dir/ensemble`` and 05 writes ``out_dir/submission.csv`` from it."""
    checkpoints = Path(run_dir) / train["run_name"] / "checkpoints"
    best, ensemble = str(checkpoints / "best-*.ckpt"), Path(out_dir) / "ensemble"
    return [
        ("01_eda.ipynb", {"data_dir": data_dir, **(eda or {})}),
        ("02_train.ipynb", {"data_dir": data_dir, "output_dir": str(run_dir), "overwrite": True, **train}),
        ("03_error_analysis.ipynb", {"checkpoints": [best], "data_dir": data_dir, "max_images": max_images}),
        ("04_ensemble.ipynb", {"checkpoints": [best, str(checkpoints / "last.ckpt")], "data_dir": data_dir,
                               "output_dir": str(ensemble), "max_images": max_images}),
        ("05_submission.ipynb", {"choice": str(ensemble / CHOICE_FILE), "data_dir": data_dir,
                                 "out_csv": str(Path(out_dir) / "submission.csv")}),
    ]


#: The main job on the embedded default data: PaddleOCR's pretrained detector fine-tuned on the synthetic receipts.
MAIN_JOB = notebook_sequence("data/synth", {"arch": "ppocr_det", "preset": "ppocr_synth", "run_name": "demo-ppocr"},
                             "outputs", "outputs", max_images=10, eda={"split": "train"})


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


#: The headless kernel logs errors only: its start-up notes (e.g. ipykernel's warning that a kernel on local TCP
#: is unencrypted, once per notebook) are not the user's; the cells' own output and warnings still stream.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]


def run_notebook(name: str, out_dir: Path | str, parameters: dict[str, Any] | None = None, *,
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
                               stderr_file=sys.stderr if stream else None, extra_arguments=KERNEL_ARGUMENTS)
    return out_path


def run_sequence(sequence: NotebookSequence, out_dir: Path | str, stream: bool = True) -> list[Path]:
    """Run the notebooks of ``sequence`` in order into ``out_dir``, printing each one's time and the total (with
    ``stream``, the notebooks' own progress too); stops at the first failure."""
    paths, started = [], time.perf_counter()
    for number, (name, params) in enumerate(sequence, start=1):
        began = time.perf_counter()
        print(f"[{number}/{len(sequence)}] {name} ...", flush=True)
        paths.append(run_notebook(name, out_dir, params, progress=not stream, stream=stream))
        print(f"[{number}/{len(sequence)}] {name}: {time.perf_counter() - began:.0f} s", flush=True)
    print(f"{len(sequence)} notebooks: {(time.perf_counter() - started) / 60:.1f} min in all", flush=True)
    return paths


def reproduce(report: str, data_dir: str = "data/receipts", *, smoke: bool = False,
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
    sequence = notebook_sequence(data_dir, {**train_params, "run_name": name, **(train_overrides or {})}, run_dir, out,
                                 max_images)
    run_sequence(sequence, out / "notebooks", stream=False)
    scores = pd.read_csv(SCORES_CSV) if SCORES_CSV.is_file() else None
    runs = pd.read_csv(run_dir / "runs.csv")
    write_csv(comparison_table(runs, scores, run_per_image(run_dir, runs["run"])), out / "comparison.csv", index=False)
    return out


def demo_command(args: argparse.Namespace) -> None:
    """``python -m kit demo``: the main job, each notebook's time and the total on the console."""
    run_sequence(MAIN_JOB, args.out)


def reproduce_command(args: argparse.Namespace) -> None:
    """``python -m kit reproduce REPORT``: where the notebooks and the comparison table went."""
    print(f"outputs in {reproduce(args.report, args.data_dir, smoke=args.smoke, out_dir=args.out)}")
