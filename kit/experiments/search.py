"""Hyper-parameter search on Optuna: any training setting and the postprocess, trials pruned on the per-epoch val
H-mean, workers in several processes, GPUs or machines joining one study.

A study lives where every worker can reach it: by default a journal file beside its runs
(``outputs/search/<study>/study.journal``: Optuna's ``JournalFileBackend`` appends under a file lock, so the
processes of one machine, or machines sharing that folder, join it), or any database URL Optuna takes
(``sqlite:///search.db``, ``postgresql://user@host/db``) for machines without a shared folder. Each trial is one
training run, :func:`kit.training.run.train` with the sampled settings (:mod:`kit.experiments.space`) on top of the
preset and the fixed ``--set`` ones, under ``<out>/runs/trial-NNNN``: after every epoch it reports its val H-mean,
and the pruner may stop it there (the run keeps its checkpoints; the trial is marked pruned). A trial's value is
its best val H-mean; its per-image val scores go into the study too, so :func:`compare_trials` (the paired bootstrap
of the best trials against the best) works on any machine, whichever machine ran them.

Command line: ``python -m kit search --study lr-wd --preset lite0_cpu --param lr=log:1e-4:3e-3
--param weight_decay=float:0:2e-4 --trials 20 [--jobs 2] [--storage URL]``; start the same command on another
machine (with ``--storage`` reaching the same study) and it takes trials of the same search.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
from dataclasses import fields
from pathlib import Path
from typing import Any, Sequence

import optuna
import pandas as pd

from kit.errors import InputError, NonFiniteLoss
from kit.evaluation.per_image import SCORES, per_image_scores
from kit.evaluation.significance import against_baseline
from kit.experiments.jobs import WORKER_ENV, run_workers, without_option
from kit.experiments.space import SearchParam, as_settings, merge_base
from kit.files import write_csv
from kit.paths import OUTPUTS, VAL_PER_IMAGE, project_path
from kit.training.config import NESTED, TrainConfig, resolve_config
from kit.training.run import train

SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "none")
TRIALS_CSV = "trials.csv"
#: Trial states that count towards ``--trials``: finished, and those still running (another worker's).
COUNTED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL,
           optuna.trial.TrialState.RUNNING)


def study_folder(study: str, out_dir: Path | str | None = None) -> Path:
    """Where a study's runs, worker logs and trial table go: ``out_dir``, else ``outputs/search/<study>``."""
    return project_path(out_dir) if out_dir else OUTPUTS / "search" / study


def storage_for(storage: str | None, folder: Path) -> str | optuna.storages.BaseStorage:
    """A database URL as it is; else a journal file (the path given, default ``folder/study.journal``)."""
    if storage and "://" in storage:
        return storage
    path = project_path(storage) if storage else folder / "study.journal"
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def open_study(study: str, storage: str | optuna.storages.BaseStorage, sampler: str = "tpe", pruner: str = "median",
               seed: int | None = None) -> optuna.Study:
    """Create the study or join it (every worker calls this); it maximises val H-mean.

    Pruning ``median``: a trial stops after an epoch whose val H-mean is below the median of earlier trials at
    that epoch (from the third trial, after its first epoch); ``hyperband``: Optuna's successive halving. A
    ``seed`` is offset by the worker's index (``--jobs``), so that workers do not sample the same settings.
    """
    seed = None if seed is None else seed + int(os.environ.get(WORKER_ENV, "0"))
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the kit prints what a trial did; Optuna's INFO repeats it
    samplers = {"tpe": lambda: optuna.samplers.TPESampler(seed=seed, n_startup_trials=4),
                "random": lambda: optuna.samplers.RandomSampler(seed=seed)}
    pruners = {"median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
               "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=1),
               "none": optuna.pruners.NopPruner}
    if sampler not in samplers or pruner not in pruners:
        raise InputError(f"sampler must be one of {SAMPLERS} and pruner one of {PRUNERS}; got {sampler!r}, {pruner!r}")
    return optuna.create_study(study_name=study, storage=storage, direction="maximize", sampler=samplers[sampler](),
                               pruner=pruners[pruner](), load_if_exists=True)


def check_space(space: Sequence[SearchParam], base: dict[str, Any], preset: str | None) -> TrainConfig:
    """The run a trial would train, built from the middle of every range: a setting the kit does not know (nested
    ones too), or a value it refuses, is an error before any trial starts."""
    for param in space:
        outer, dot, inner = param.key.partition(".")
        if dot and (outer not in NESTED or inner not in {f.name for f in fields(NESTED[outer])}):
            known = {name: sorted(f.name for f in fields(cls)) for name, cls in NESTED.items()}
            raise InputError(f"--param {param.key}: not a nested setting; nested ones are "
                             f"{', '.join(f'{k}.{v}' for k, names in known.items() for v in names)}")
    if not space:
        raise InputError("give at least one --param to search")
    return resolve_config(preset, **merge_base(base, as_settings({p.key: p.middle() for p in space})))


def _objective(space: Sequence[SearchParam], base: dict[str, Any], preset: str | None, runs: Path,
               progress: bool) -> Any:
    """One trial: sample, train with the pruner watching each epoch, keep the run's scores in the study."""

    def objective(trial: optuna.Trial) -> float:
        settings = merge_base(base, as_settings({p.key: p.suggest(trial) for p in space}))
        name = f"trial-{trial.number:04d}"
        config = resolve_config(preset, **{**settings, "run_name": name, "output_dir": str(runs)})
        trial.set_user_attr("run_dir", str(runs / name))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        pruned: list[int] = []

        def report(row: dict[str, Any]) -> bool:
            trial.report(row["val_hmean"], row["epoch"])
            if trial.should_prune():
                pruned.append(row["epoch"])
            return bool(pruned)

        result = train(config, progress=progress, on_epoch=report)
        summary = result.summary
        for key in ("val_precision", "val_recall", "best_epoch", "epochs_run", "train_time_s"):
            trial.set_user_attr(key, summary[key])
        per_image = result.run_dir / VAL_PER_IMAGE
        if per_image.is_file():
            trial.set_user_attr("val_per_image", per_image_scores(per_image).to_dict("split"))
        if pruned:
            raise optuna.TrialPruned(f"{name}: val H-mean {summary['val_hmean']:.4f} pruned after epoch {pruned[0]}")
        return float(summary["val_hmean"])

    return objective


def run_search(study: str, space: Sequence[SearchParam], trials: int, base: dict[str, Any] | None = None,
               preset: str | None = None, out_dir: Path | str | None = None, storage: str | None = None,
               sampler: str = "tpe", pruner: str = "median", seed: int | None = None,
               progress: bool = False) -> optuna.Study:
    """Take trials of ``study`` until it holds ``trials`` of them (counting other workers', running ones
    included), then return it. A trial whose loss went NaN/inf is recorded as failed and the search goes on."""
    base = dict(base or {})
    check_space(space, base, preset)
    folder = study_folder(study, out_dir)
    found = open_study(study, storage_for(storage, folder), sampler, pruner, seed)
    limit = optuna.study.MaxTrialsCallback(trials, states=COUNTED)
    if len(found.get_trials(deepcopy=False, states=COUNTED)) < trials:
        found.optimize(_objective(space, base, preset, folder / "runs", progress), n_trials=trials,
                       callbacks=[limit], catch=(NonFiniteLoss,))
    write_csv(trials_table(found), folder / TRIALS_CSV, index=False)
    return found


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value (best val H-mean), P / R, epochs, where it ran, and the settings."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        rows.append({"trial": trial.number, "state": trial.state.name, "val_hmean": trial.value,
                     "val_precision": attrs.get("val_precision"), "val_recall": attrs.get("val_recall"),
                     "epochs_run": attrs.get("epochs_run"), "best_epoch": attrs.get("best_epoch"),
                     "train_time_s": attrs.get("train_time_s"), "worker": attrs.get("worker"),
                     "run_dir": attrs.get("run_dir"), **trial.params})
    return pd.DataFrame(rows)


def compare_trials(study: optuna.Study, top: int = 5, baseline: str | None = None) -> pd.DataFrame:
    """The ``top`` completed trials by value, each against ``baseline`` (a trial's name, default the best) by the
    paired bootstrap over their val images (:func:`kit.evaluation.significance.against_baseline`)."""
    done = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if "val_per_image" in t.user_attrs and t.value is not None and not math.isnan(t.value)]
    best = sorted(done, key=lambda t: t.value, reverse=True)[:top]
    if not best:
        raise InputError(f"study {study.study_name!r} has no completed trial with per-image val scores yet")
    sets = {f"trial-{t.number:04d}": pd.DataFrame(**t.user_attrs["val_per_image"]) for t in best}
    table = against_baseline({name: scores[list(SCORES)] for name, scores in sets.items()}, baseline)
    params = pd.DataFrame({f"trial-{t.number:04d}": t.params for t in best}).T
    return table.join(params).rename_axis("trial")


def command(args: argparse.Namespace) -> None:
    """``python -m kit search``: take trials (``--jobs N``: N local worker processes), then print the study's
    trials, the best settings and the paired comparison of the best trials."""
    folder = study_folder(args.study, args.out)
    if args.jobs > 1:
        run_workers(["search", *without_option(args.argv, "--jobs"), "--jobs", "1"], args.jobs, folder / "workers")
        study = open_study(args.study, storage_for(args.storage, folder), args.sampler, args.pruner, args.seed)
    else:
        study = run_search(args.study, args.param, args.trials, args.set, args.preset, args.out, args.storage,
                           args.sampler, args.pruner, args.seed, progress=True)
    table = trials_table(study)
    write_csv(table, folder / TRIALS_CSV, index=False)
    counts = table["state"].value_counts().to_dict() if len(table) else {}
    print(f"study {args.study!r}: {len(table)} trials ({', '.join(f'{n} {s.lower()}' for s, n in counts.items())}); "
          f"table: {folder / TRIALS_CSV}")
    if not counts.get("COMPLETE"):
        return
    print(f"best: trial {study.best_trial.number}, val H-mean {study.best_value:.4f}, settings {study.best_params}")
    print("\nthe best trials against the best on its val images (dH in points):")
    print(compare_trials(study, args.top).to_string())
