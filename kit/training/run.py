"""A training run: plain PyTorch, GPU first, CPU works, DDP under torchrun.

``train(resolve_config("hrnet_w44"))`` runs the report's HRNet-W44 experiment; every run
writes ``outputs/<run>/`` (resolved config, ``metrics.csv``, ``train.log``, checkpoints, the best
epoch's per-image val scores) and appends one row to ``outputs/runs.csv``. Validation every epoch scores CLEval
(the competition's per-image mean) after the postprocess; early stopping watches val
H-mean, never val loss. Checkpoints (:class:`kit.model.checkpoint.Checkpoint`) carry the model
config and postprocess settings, so inference needs only the file, and everything a resumed
run needs to continue exactly: optimizer, scheduler, scaler, epoch, early-stopping state and
history. Randomness is a function of (seed, epoch): shuffling and augmentation are reseeded
every epoch, which is what makes a resumed run repeat the uninterrupted one.

Command line: ``python -m kit train --preset hrnet_w44 [--set lr=4e-4 --set fold=0] [--resume CKPT]``,
or ``torchrun --nproc_per_node=N -m kit train ...`` for several GPUs (batch size is per GPU).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import time
import warnings
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd
import torch
import torch.distributed as dist
from timm.utils import ModelEmaV3
from tqdm import tqdm

from kit.data.annotations import ImageRecord, folds_file, load_split, split_by_fold
from kit.data.dataset import TextDetectionDataset
from kit.data.synth import resolve_data_dir
from kit.errors import InputError, NonFiniteLoss
from kit.evaluation.cleval import DatasetResult
from kit.evaluation.per_image import per_image_scores
from kit.files import append_row, write_csv, write_text
from kit.model.checkpoint import Checkpoint
from kit.model.factory import count_parameters
from kit.model.family import family_of
from kit.model.postprocess import PostprocessConfig
from kit.paths import VAL_PER_IMAGE, project_path
from kit.runtime import Runtime, peak_memory_mb, seed_everything
from kit.training.config import (
    TrainConfig,
    config_for,
    resolve_config,
    shrink_ratio_for_epoch,
    size_for_epoch,
    steps_per_epoch,
)
from kit.training.loop import (
    EarlyStopping,
    build_optimizer,
    checkpoint_name,
    gather_results,
    make_loader,
    model_for,
    train_one_epoch,
    validate,
)
from kit.training.presets import REPORT_PRESETS
from kit.training.teacher import Teacher

RUNS_CSV = "runs.csv"


def load_records(config: TrainConfig, announce: bool = True) -> tuple[list[ImageRecord], list[ImageRecord], Path]:
    """(train, validation, data folder): the val split, or fold ``fold`` of the train images held out.

    With ``folds_include_val`` the folds are cut over train + val together.
    """
    data_dir = resolve_data_dir(config.data_dir, announce=announce)
    train, _ = load_split(data_dir, "train")
    val, _ = load_split(data_dir, "val") if config.fold is None or config.folds_include_val else ([], None)
    if config.fold is not None:
        pool = train + val
        pooled = "+val" if config.folds_include_val else ""
        name = f"{data_dir.name}{pooled}-k{config.n_folds}-s{config.fold_seed}.json"
        path = project_path(config.output_dir) / "folds" / name
        folds = folds_file([r.name for r in pool], path, config.n_folds, config.fold_seed)
        train, val = split_by_fold(pool, folds, config.fold)
    return train[: config.max_train_images], val[: config.max_val_images], data_dir


def zero_shot_checkpoint(config: TrainConfig) -> Checkpoint:
    """A pretrained model saved untrained, with ``config``'s postprocess and evaluation size, so that the
    notebooks, ensembles and the submission treat a zero-shot detector like any trained checkpoint."""
    if not (config.pretrained or config.pretrained_path):
        raise InputError(f"{config.arch}: a zero-shot checkpoint needs pretrained weights (pretrained=True or "
                         "pretrained_path=FILE); random weights detect nothing")
    model = model_for(config).eval()
    return Checkpoint(model.state_dict(), model.config, config.postprocess, config.final_size,
                      run=f"zero-shot-{config.arch}", train_config=config.to_dict(),
                      pad_multiple=family_of(config.arch).stride)  # padded as the family's own inference pads


@dataclass
class RunResult:
    """What a run produced."""

    run_dir: Path
    best_checkpoint: Path | None
    last_checkpoint: Path
    metrics: pd.DataFrame
    summary: dict[str, Any]


class _Logger:
    """train.log, metrics.csv and the optional TensorBoard / Weights & Biases sinks (main process only)."""

    def __init__(self, run_dir: Path, config: TrainConfig, enabled: bool):
        self.enabled = enabled
        self.log = logging.getLogger(f"kit.training.{run_dir.name}")
        self.log.setLevel(logging.INFO)
        self.tb = self.wandb = None
        if not enabled:
            return
        if not any(isinstance(h, logging.FileHandler) for h in self.log.handlers):
            handler = logging.FileHandler(run_dir / "train.log")
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
            self.log.addHandler(handler)
        if config.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:
                self.log.warning("tensorboard requested but not installed; skipping it")
        if config.wandb:
            try:
                import wandb

                self.wandb = wandb.init(project="receipt-kit", name=run_dir.name, dir=str(run_dir), mode="offline",
                                        config=config.to_dict())
            except ImportError:
                self.log.warning("wandb requested but not installed; skipping it")

    def info(self, message: str) -> None:
        if self.enabled:
            self.log.info(message)

    def epoch(self, row: dict[str, Any]) -> None:
        if self.tb is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)) and key != "epoch":
                    self.tb.add_scalar(key, value, row["epoch"])
        if self.wandb is not None:
            self.wandb.log(row, step=row["epoch"])

    def close(self) -> None:
        """Close every sink; idempotent. The file handler goes too, so a later run of the same name logs afresh."""
        for handler in [h for h in self.log.handlers if isinstance(h, logging.FileHandler)]:
            handler.close()
            self.log.removeHandler(handler)
        if self.tb is not None:
            self.tb.close()
            self.tb = None
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None


def _new_run_dir(config: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    fold = "val" if config.fold is None else f"fold{config.fold}"
    name = config.run_name or f"{config.preset or config.arch}-{config.arch}-{fold}-s{config.seed}-{stamp}"
    return project_path(config.output_dir) / name


def _epochs(start: int, total: int, enabled: bool) -> Iterator[int]:
    yield from tqdm(range(start, total), desc="epochs", initial=start, total=total, disable=not enabled)


def _cpu_pace_warning(config: TrainConfig, logger: _Logger, seconds_per_step: float, steps_per_epoch: int) -> None:
    """A report preset on a CPU: say, after its first steps, how long the run would take and what fits a CPU."""
    hours = seconds_per_step * steps_per_epoch * config.epochs / 3600
    message = (f"the {config.preset!r} preset is a GPU recipe: on this CPU it runs {seconds_per_step:.1f} s per step, "
               f"so {config.epochs} epochs of {steps_per_epoch} steps would take about {hours:.1f} h (later epochs at "
               "a larger size take longer). On a CPU use arch 'ppocr_det' (preset ppocr_cpu) or preset 'smoke'.")
    logger.info(message)
    warnings.warn(message, stacklevel=2)


def _start_run(config: TrainConfig, resume: Path | str | None, runtime: Runtime,
               overwrite: bool) -> tuple[TrainConfig, Path, Checkpoint | None]:
    """(config, run folder, the checkpoint resumed from): a resumed run continues its own folder and config.

    A run name names one run: a folder that already holds checkpoints is never replaced unless ``overwrite``.
    """
    if resume is not None:
        resumed = Checkpoint.load(resume, runtime.device)
        if resumed.training_state is None or resumed.train_config is None:
            raise InputError(f"{resume}: holds no training state (a soup?); resume from a run's last.ckpt")
        run_dir = Path(resume).resolve().parent.parent
        for stale in (run_dir / "checkpoints").glob(".*.tmp"):  # a save killed midway left its temporary behind
            stale.unlink(missing_ok=True)
        return TrainConfig(**resumed.train_config), run_dir, resumed
    run_dir = _new_run_dir(config)
    checkpoints = sorted((run_dir / "checkpoints").glob("*.ckpt"))
    if checkpoints and not overwrite:
        last = run_dir / "checkpoints" / "last.ckpt"
        how = (f"continue it with resume={str(last)!r} (python -m kit train --resume {last}), "
               if last.is_file() else "it has no last.ckpt to resume (stopped during its first epoch's saves); ")
        raise FileExistsError(
            f"run folder {run_dir} already holds a run ({', '.join(p.name for p in checkpoints)}); {how}choose "
            "another run_name, or replace it on purpose with overwrite=True (python -m kit train --overwrite; "
            "notebook 02: -p overwrite True)")
    if runtime.main and run_dir.exists():
        if checkpoints:
            warnings.warn(f"overwrite: replacing the run in {run_dir} ({len(checkpoints)} checkpoints)", stacklevel=3)
        shutil.rmtree(run_dir)
    return config, run_dir, None


#: Called after each epoch's files are saved with that epoch's ``metrics.csv`` row; True stops the run there.
EpochCallback = Callable[[dict[str, Any]], bool]


def train(config: TrainConfig, *, resume: Path | str | None = None, progress: bool = True,
          overwrite: bool = False, on_epoch: EpochCallback | None = None) -> RunResult:
    """Train ``config``; with ``resume`` (a checkpoint of the same run) continue where it stopped.

    An existing run of the same name is an error unless ``overwrite`` (then it is replaced, with a warning).
    A new run that fails before finishing its first epoch leaves no run folder behind. ``on_epoch`` sees each
    epoch's row (val H-mean included) once its checkpoints are written and may end the run there (a search's
    pruner does); under DDP rank 0 calls it and every rank follows its answer.
    """
    runtime = Runtime.start()
    config, run_dir, resumed = _start_run(config, resume, runtime, overwrite)
    if runtime.main:
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "config.json", json.dumps(config.to_dict(), indent=1))
    logger = _Logger(run_dir, config, runtime.main)
    try:
        return _run(config, run_dir, resumed, runtime, logger, progress and runtime.main, on_epoch)
    except BaseException:
        if runtime.main and resumed is None and not (run_dir / "metrics.csv").is_file():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        logger.close()


@dataclass
class _Progress:
    """What the epochs carry from one to the next, and what ``last.ckpt`` keeps of it for a resume."""

    stopping: EarlyStopping
    history: list[dict[str, Any]] = field(default_factory=list)
    best_path: str | None = None
    start_epoch: int = 0
    optimizer_steps: int = 0
    #: Why the run ended: "epochs" (all run), "patience" (early stopping) or "callback" (``on_epoch``).
    stopped_by: str = "epochs"


def _restore(resumed: Checkpoint, model: torch.nn.Module, ema: ModelEmaV3 | None, optimizer: torch.optim.Optimizer,
             scheduler: Any, scaler: torch.amp.GradScaler, patience: int) -> _Progress:
    """Load a resumed run's weights and training state; with EMA the checkpoint's weights are the average and the
    trained ones are kept beside them."""
    state = resumed.training_state
    model.load_state_dict(state.get("model_weights", resumed.weights))
    if ema is not None:
        ema.module.load_state_dict(resumed.weights)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    return _Progress(EarlyStopping(patience, **state["early_stopping"]), resumed.history, state["best_path"],
                     resumed.epoch + 1, state.get("optimizer_steps", 0))


def _stop_on_nan(err: NonFiniteLoss, run_dir: Path, epoch: int, history: list[dict[str, Any]],
                 logger: _Logger) -> NonFiniteLoss:
    """The error a NaN/inf loss ends the run with: where it happened and the last good checkpoint."""
    last = f"{run_dir / 'checkpoints' / 'last.ckpt'} (epoch {history[-1]['epoch']})" if history else None
    kept = f"the last good checkpoint is {last}" if last else "no epoch finished"
    logger.info(f"stopped: epoch {epoch}, {err}")
    return NonFiniteLoss(f"{run_dir.name}: epoch {epoch}, {err}; {kept}. Lower lr, set grad_clip, or use fp32")


def _save_epoch(checkpoint: Checkpoint, progress: _Progress, previous_best: str | None, improved: bool,
                scores: DatasetResult, run_dir: Path) -> None:
    """The epoch's files, in the order that survives a kill at any point: the new best before the old one goes,
    the curve before ``last.ckpt`` (a kill between them makes the resumed run redo, and rewrite, this epoch)."""
    if improved:
        checkpoint.save(progress.best_path)
        if previous_best and previous_best != progress.best_path:
            Path(previous_best).unlink(missing_ok=True)
        write_csv(per_image_scores(scores), run_dir / VAL_PER_IMAGE)
    write_csv(pd.DataFrame(progress.history), run_dir / "metrics.csv", index=False)
    checkpoint.save(run_dir / "checkpoints" / "last.ckpt")


def _summary(config: TrainConfig, run_dir: Path, model: torch.nn.Module, progress: _Progress,
             started: float) -> dict[str, Any]:
    """The run's row of ``runs.csv``: the best epoch's val scores, cost and the settings compared across runs."""
    history, best_epoch = progress.history, progress.stopping.best_epoch
    best_row = next((r for r in history if r["epoch"] == best_epoch), {})
    summary = {
        "run": run_dir.name, "arch": config.arch, "preset": config.preset,
        "fold": "val" if config.fold is None else config.fold, "params": count_parameters(model), "lr": config.lr,
        "weight_decay": config.weight_decay, "epochs_run": len(history), "best_epoch": best_epoch,
        **{f"val_{k}": best_row.get(f"val_{k}", math.nan) for k in ("precision", "recall", "hmean")},
        "train_time_s": time.time() - started, "peak_memory_mb": max((r["peak_memory_mb"] for r in history), default=0),
        "seed": config.seed, "stopped_by": progress.stopped_by,
        "finished": datetime.now().isoformat(timespec="seconds"),
    }
    summary["pr_gap"] = summary["val_precision"] - summary["val_recall"]
    return summary


def _agreed(flag: bool, runtime: Runtime) -> bool:
    """Rank 0's ``flag`` on every rank (itself outside DDP)."""
    if runtime.world == 1:
        return flag
    shared = torch.tensor([int(flag)], device=runtime.device)
    dist.broadcast(shared, 0)
    return bool(shared.item())


@dataclass
class _Training:
    """A run set up: its data, model and optimizer state, and what the epochs carry (``progress``).

    ``model`` is the trained module, ``forward`` what the training step calls (DDP-wrapped or compiled), and
    ``eval_model`` what validation scores and checkpoints hold (the EMA average with ``ema_decay``).
    """

    config: TrainConfig
    run_dir: Path
    runtime: Runtime
    logger: _Logger
    show: bool
    model: torch.nn.Module
    forward: torch.nn.Module
    eval_model: torch.nn.Module
    ema: ModelEmaV3 | None
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    teacher: Teacher | None
    train_ds: TextDetectionDataset
    val_ds: TextDetectionDataset
    val_gt: dict[str, list[Any]]
    progress: _Progress
    started: float

    def after_step(self) -> None:
        """After each optimizer step: the EMA update, and a per-step lr schedule's step."""
        self.progress.optimizer_steps += 1
        if self.ema is not None:
            self.ema.update(self.model, step=self.progress.optimizer_steps)
        if self.config.lr_interval == "step":
            self.scheduler.step()


def _set_up(config: TrainConfig, run_dir: Path, resumed: Checkpoint | None, runtime: Runtime, logger: _Logger,
            show: bool) -> _Training:
    """Data, model, optimizer, EMA and teacher; a resumed run's state restored."""
    train_records, val_records, data_dir = load_records(config, announce=runtime.main)
    logger.info(f"data {data_dir}: {len(train_records)} train / {len(val_records)} val images")
    seed_everything(config.seed)
    model = model_for(config, fresh=resumed is None).to(runtime.device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer, scheduler = build_optimizer(model, config, steps_per_epoch(config, len(train_records), runtime.world))
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=config.precision == "fp16")
    ema = ModelEmaV3(model, decay=config.ema_decay, use_warmup=config.ema_warmup) if config.ema_decay else None
    teacher = Teacher.from_config(config, model, runtime.device)
    progress = _Progress(EarlyStopping(config.patience))
    if resumed is not None:
        progress = _restore(resumed, model, ema, optimizer, scheduler, scaler, config.patience)
        logger.info(f"resumed from epoch {resumed.epoch} of {run_dir.name}")
    forward = model
    if runtime.world > 1:
        forward = torch.nn.parallel.DistributedDataParallel(model, device_ids=[runtime.device.index]
                                                            if runtime.device.type == "cuda" else None)
    if config.compile:  # the same parameters: the optimizer needs no change
        forward = torch.compile(forward)
    norm = {"mean": model.config.mean, "std": model.config.std}
    train_ds = TextDetectionDataset(train_records, size_for_epoch(config.schedule, progress.start_epoch),
                                    config.augment, config.targets, **norm)
    val_ds = TextDetectionDataset(val_records[runtime.rank::runtime.world], config.final_size, None, config.targets,
                                  **norm)
    return _Training(config, run_dir, runtime, logger, show, model, forward,
                     ema.module if ema is not None else model, ema, optimizer, scheduler, scaler, teacher, train_ds,
                     val_ds, {r.name: r.polygons() for r in val_records}, progress,
                     started=time.time() - sum(row["epoch_time_s"] for row in progress.history))


def _train_epoch(t: _Training, epoch: int) -> tuple[dict[str, Any], DatasetResult, PostprocessConfig]:
    """One epoch: its schedule (size, shrink ratio, freezing), training, validation; (its row, the scores, the
    postprocess it was validated with)."""
    config, runtime = t.config, t.runtime
    epoch_start = time.time()
    t.train_ds.size = size_for_epoch(config.schedule, epoch)
    shrink = shrink_ratio_for_epoch(config, epoch)
    t.train_ds.targets = replace(config.targets, shrink_ratio=shrink)
    # the postprocess inverts the shrink the model was last trained on (used when unclip_ratio is None)
    post = replace(config.postprocess, shrink_ratio=shrink) if config.shrink_ratio_end else config.postprocess
    if config.freeze_levels or config.freeze_epochs:
        t.model.freeze_encoder(None if epoch < config.freeze_epochs else config.freeze_levels)
    gpu_recipe_on_cpu = runtime.device.type == "cpu" and config.preset in REPORT_PRESETS and runtime.main
    pace = partial(_cpu_pace_warning, config, t.logger) if gpu_recipe_on_cpu and epoch == t.progress.start_epoch \
        else None
    lr = t.optimizer.param_groups[0]["lr"]
    loader = make_loader(t.train_ds, config, epoch, train=True, runtime=runtime)
    try:
        losses = train_one_epoch(t.forward, loader, t.optimizer, t.scaler, config, runtime,
                                 desc=f"epoch {epoch} @ {t.train_ds.size}px", progress=t.show, on_pace=pace,
                                 on_step=t.after_step, targets=t.teacher.targets if t.teacher is not None else None)
    except NonFiniteLoss as err:
        raise _stop_on_nan(err, t.run_dir, epoch, t.progress.history, t.logger) from None
    skipped = losses.pop("skipped_steps")
    if skipped:
        t.logger.info(f"epoch {epoch}: fp16 skipped {skipped} optimizer steps (inf/NaN gradients)")
    if config.lr_interval == "epoch":
        t.scheduler.step()
    train_time = time.time() - epoch_start
    val_loader = make_loader(t.val_ds, config, epoch, train=False, runtime=runtime)
    per_image = validate(t.eval_model, val_loader, t.val_gt, post, runtime, config.precision, progress=t.show)
    scores = gather_results(per_image, runtime)
    row = {"epoch": epoch, "lr": lr, "size": t.train_ds.size, "shrink_ratio": shrink,
           **{f"loss_{k}": v for k, v in losses.items()}, "skipped_steps": skipped,
           "val_precision": scores.precision, "val_recall": scores.recall, "val_hmean": scores.hmean,
           "val_images": len(scores.per_image), "epoch_time_s": time.time() - epoch_start,
           "train_images_per_s": len(t.train_ds) / max(train_time, 1e-9),
           "peak_memory_mb": peak_memory_mb(runtime.device)}
    return row, scores, post


def _checkpoint(t: _Training, epoch: int, row: dict[str, Any], scores: DatasetResult, post: PostprocessConfig,
                improved: bool) -> None:
    """The epoch's checkpoint (with everything a resume needs) and files; main process only."""
    progress = t.progress
    previous_best = progress.best_path
    if improved:
        progress.best_path = str(t.run_dir / "checkpoints" / checkpoint_name(epoch, scores.hmean))
    training_state = {"optimizer": t.optimizer.state_dict(), "scheduler": t.scheduler.state_dict(),
                      "scaler": t.scaler.state_dict(), "early_stopping": progress.stopping.state(),
                      "best_path": progress.best_path, "optimizer_steps": progress.optimizer_steps}
    if t.ema is not None:  # the checkpoint's weights are the average; resume needs the trained ones too
        training_state["model_weights"] = t.model.state_dict()
    checkpoint = Checkpoint(t.eval_model.state_dict(), t.model.config, post, t.config.final_size, run=t.run_dir.name,
                            epoch=epoch, val=scores.scores(), history=list(progress.history),
                            train_config=t.config.to_dict(), training_state=training_state)
    _save_epoch(checkpoint, progress, previous_best, improved, scores, t.run_dir)
    t.logger.epoch(row)
    t.logger.info(json.dumps(row))


def _run(config: TrainConfig, run_dir: Path, resumed: Checkpoint | None, runtime: Runtime, logger: _Logger,
         show: bool, on_epoch: EpochCallback | None) -> RunResult:
    """The run itself: set-up, the epochs (train, validate, checkpoint; early stopping, the callback), the summary."""
    t = _set_up(config, run_dir, resumed, runtime, logger, show)
    progress = t.progress
    for epoch in _epochs(progress.start_epoch, config.epochs, show):
        if progress.stopping.stop:
            progress.stopped_by = "patience"
            break
        row, scores, post = _train_epoch(t, epoch)
        progress.history.append(row)
        improved = progress.stopping.update(epoch, scores.hmean)
        if runtime.main:
            _checkpoint(t, epoch, row, scores, post, improved)
        if on_epoch is not None and _agreed(runtime.main and bool(on_epoch(dict(row))), runtime):
            progress.stopped_by = "callback"
            logger.info(f"stopped after epoch {epoch}: the epoch callback asked (e.g. a search's pruner)")
            break
    summary = _summary(config, run_dir, t.model, progress, t.started)
    if runtime.main:
        append_row(project_path(config.output_dir) / RUNS_CSV, summary)
        logger.info(f"done: {json.dumps(summary)}")
    best = Path(progress.best_path) if progress.best_path else None
    return RunResult(run_dir, best, run_dir / "checkpoints" / "last.ckpt", pd.DataFrame(progress.history), summary)


def command(args: argparse.Namespace) -> None:
    """``python -m kit train``: the run's summary as one JSON line (rank 0 under torchrun)."""
    result = train(resolve_config(args.preset, **args.set), resume=args.resume,
                   overwrite=args.overwrite)
    if not dist.is_initialized() or dist.get_rank() == 0:
        print(json.dumps(result.summary, default=str))
    if dist.is_initialized():
        dist.destroy_process_group()


def pretrained_command(args: argparse.Namespace) -> None:
    """``python -m kit pretrained``: write the zero-shot checkpoint and say where."""
    config = config_for(args.arch, args.preset, **args.set)
    checkpoint = zero_shot_checkpoint(config)
    path = checkpoint.save(project_path(args.out))
    print(f"{args.arch} ({config.preset or 'defaults'}, weights {checkpoint.model_config.weights}): "
          f"zero-shot checkpoint {path}")
