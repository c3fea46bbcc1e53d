"""The training loop: plain PyTorch, GPU first, CPU works, DDP under torchrun.

``train(resolve_config("hrnet_w44"))`` runs the report's HRNet-W44 experiment; every run
writes ``outputs/<run>/`` (resolved config, ``metrics.csv``, ``train.log``, checkpoints, the best
epoch's per-image val scores) and appends one row to ``outputs/runs.csv``. Validation every epoch scores CLEval
(the competition's per-image mean) after the postprocess; early stopping watches val
H-mean, never val loss. Checkpoints (:class:`kit.checkpoint.Checkpoint`) carry the model
config and postprocess settings, so inference needs only the file, and everything a resumed
run needs to continue exactly: optimizer, scheduler, scaler, epoch, early-stopping state and
history. Randomness is a function of (seed, epoch): shuffling and augmentation are reseeded
every epoch, which is what makes a resumed run repeat the uninterrupted one.

Command line: ``python -m kit.train --preset hrnet_w44 [--set lr=4e-4 --set fold=0] [--resume CKPT]``,
or ``torchrun --nproc_per_node=N -m kit.train ...`` for several GPUs (batch size is per GPU).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from timm.utils import ModelEmaV3
from torch.utils.data import DataLoader, DistributedSampler, get_worker_info
from tqdm import tqdm

from kit.checkpoint import Checkpoint
from kit.cli import parse_overrides, run_cli
from kit.data import ImageRecord, folds_file, load_split, resolve_data_dir, split_by_fold
from kit.dataset import AugConfig, TextDetectionDataset
from kit.errors import InputError, NonFiniteLoss
from kit.files import append_row, write_csv, write_text
from kit.loss import LossConfig, db_loss
from kit.metric import CLEvalAccumulator, DatasetResult, ImageResult, aggregate
from kit.model import PPOCR_ARCH, build_model, count_parameters
from kit.paths import VAL_PER_IMAGE, project_path
from kit.postprocess import PostprocessConfig, postprocess
from kit.presets import ARCH_PRESETS, PRESETS, REPORT_PRESETS
from kit.presets import preset as load_preset
from kit.runtime import PRECISIONS, Runtime, autocast, peak_memory_mb, seed_everything, to_device
from kit.significance import per_image_scores
from kit.targets import TargetConfig

NESTED = {"augment": AugConfig, "loss": LossConfig, "targets": TargetConfig, "postprocess": PostprocessConfig}
LR_INTERVALS = ("epoch", "step")
RUNS_CSV = "runs.csv"
#: Steps after which a report preset on a CPU says how long its run would take.
PACE_STEPS = 3


@dataclass
class TrainConfig:
    """Everything a run needs; saved as ``config.json`` in the run folder and in every checkpoint."""

    arch: str = "resnet18"
    pretrained: bool = False
    pretrained_path: str | None = None
    thresh_branch: bool = True
    decoder: str = "db"
    levels: list[int] | None = None
    #: The DB neck's width (DBNet: 256); narrower is much cheaper on a CPU.
    inner_channels: int = 256
    #: Encoder levels kept frozen for the whole run (0: none; k: up to the module producing feature level k).
    freeze_levels: int = 0
    #: Epochs at the start with the whole encoder frozen (the new neck and head settle first).
    freeze_epochs: int = 0
    data_dir: str = "data/synth"
    fold: int | None = None
    folds_include_val: bool = False
    n_folds: int = 5
    fold_seed: int = 42
    max_train_images: int | None = None
    max_val_images: int | None = None
    num_workers: int = 2
    optimizer: str = "adam"
    lr: float = 4.5e-4
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    t_max: int = 20
    eta_min: float = 8e-6
    warmup_epochs: int = 0
    #: How often warm-up and cosine advance: "epoch" (the reports') or "step" (PaddleOCR's, every optimizer step).
    lr_interval: str = "epoch"
    #: lr multiplier for the pretrained part (a timm encoder; PP-OCR's converted graph) against the new layers.
    pretrained_lr_scale: float = 1.0
    #: EMA of the weights (timm's ModelEmaV3): validation and checkpoints use the average; None: off.
    ema_decay: float | None = None
    #: Warm the EMA decay up from 0 (1 - (1 + step)^-2/3, capped at ``ema_decay``) so short runs are not
    #: dominated by the starting weights.
    ema_warmup: bool = True
    #: The targets' shrink ratio rises linearly from ``targets.shrink_ratio`` at epoch 0 to this at the last
    #: epoch (PP-OCRv4's dynamic shrink ratio, 0.4 -> 0.6); None: fixed.
    shrink_ratio_end: float | None = None
    epochs: int = 20
    patience: int = 5
    batch_size: int = 8
    grad_accum: int = 1
    grad_clip: float | None = None
    precision: str = "fp32"
    channels_last: bool = False
    seed: int = 42
    schedule: list[list[int]] = field(default_factory=lambda: [[0, 640], [4, 960]])
    eval_size: int | None = None
    augment: AugConfig = field(default_factory=AugConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    targets: TargetConfig = field(default_factory=TargetConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    preset: str | None = None
    run_name: str | None = None
    output_dir: str = "outputs"
    tensorboard: bool = False
    wandb: bool = False

    def __post_init__(self) -> None:
        for name, cls in NESTED.items():
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, cls(**value))
        if self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if self.optimizer not in ("adam", "adamw"):
            raise InputError(f"optimizer must be 'adam' or 'adamw', got {self.optimizer!r}")
        if (self.freeze_levels or self.freeze_epochs) and self.arch == PPOCR_ARCH:
            raise InputError("freeze_levels / freeze_epochs apply to timm backbones; ppocr_det is one graph")
        if self.freeze_levels < 0 or self.freeze_epochs < 0:
            raise InputError(f"freeze_levels and freeze_epochs must be >= 0, got {self.freeze_levels}, "
                             f"{self.freeze_epochs}")
        if self.lr_interval not in LR_INTERVALS:
            raise InputError(f"lr_interval must be one of {list(LR_INTERVALS)}, got {self.lr_interval!r}")
        if self.pretrained_lr_scale <= 0:
            raise InputError(f"pretrained_lr_scale must be > 0 (freeze instead of 0), got {self.pretrained_lr_scale}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise InputError(f"ema_decay must be in (0, 1) or None, got {self.ema_decay}")
        if self.shrink_ratio_end is not None and not 0.0 < self.shrink_ratio_end < 1.0:
            raise InputError(f"shrink_ratio_end must be in (0, 1) or None, got {self.shrink_ratio_end}")
        if not self.schedule or self.schedule[0][0] != 0:
            raise InputError(f"schedule must start at epoch 0, e.g. [[0, 640], [4, 960]]; got {self.schedule}")

    @property
    def final_size(self) -> int:
        """The validation resolution: ``eval_size``, else the schedule's last size."""
        return self.eval_size or self.schedule[-1][1]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_config(preset: str | None = None, **overrides: Any) -> TrainConfig:
    """A preset (or the defaults) with ``overrides`` applied; ``None`` values keep the preset's.

    Nested settings merge key by key, e.g. ``postprocess={"thresh": 0.25}``.
    """
    values: dict[str, Any] = load_preset(preset) if preset else {}
    if preset:
        values["preset"] = preset
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InputError(f"unknown setting(s) {unknown}; known: {sorted(known)}")
    for key, value in overrides.items():
        if value is None:
            continue
        if key in NESTED and isinstance(value, dict):
            values[key] = {**values.get(key, {}), **value}
        else:
            values[key] = value
    return TrainConfig(**values)


def config_for(arch: str, preset: str | None = None, **overrides: Any) -> TrainConfig:
    """The notebook's rule: the preset defaults to the one named after ``arch`` (the report
    presets are named by backbone; ``ppocr_det``'s is ``ppocr_cpu``); with another preset,
    ``arch`` replaces its backbone."""
    name = preset or (arch if arch in PRESETS else ARCH_PRESETS.get(arch))
    return resolve_config(name, arch=arch, **overrides)


def merge_settings(named: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Notebook 02's named parameters and its ``overrides`` dict (any other setting) as one set of settings; a
    setting given both ways (named and not None) is an error rather than one silently winning."""
    both = sorted(k for k in overrides if named.get(k) is not None)
    if both:
        raise InputError(f"{both} set both as parameters and in overrides; set each once")
    return {**named, **overrides}


def size_for_epoch(schedule: list[list[int]], epoch: int) -> int:
    """The training resolution of ``epoch`` under a progressive schedule ``[[start_epoch, size], ...]``."""
    return [size for start, size in sorted(schedule) if start <= epoch][-1]


def shrink_ratio_for_epoch(config: TrainConfig, epoch: int) -> float:
    """The targets' shrink ratio in ``epoch``: fixed, or rising linearly to ``shrink_ratio_end`` at the last epoch."""
    start, end = config.targets.shrink_ratio, config.shrink_ratio_end
    if end is None or config.epochs <= 1:
        return start if end is None else end
    return start + (end - start) * min(epoch, config.epochs - 1) / (config.epochs - 1)


def steps_per_epoch(config: TrainConfig, n_images: int, world: int = 1) -> int:
    """Optimizer steps in one epoch of ``n_images`` (each rank's share, padded as DistributedSampler does)."""
    batches = math.ceil(math.ceil(n_images / world) / config.batch_size)
    return max(math.ceil(batches / config.grad_accum), 1)


# ----------------------------------------------------------------------------- pieces


def _seed_worker(worker_id: int, base: int) -> None:
    """Each loader worker reseeds its augmentation from (seed, epoch, worker)."""
    info = get_worker_info()
    info.dataset.transform.set_random_seed(base + worker_id)
    np.random.seed(base + worker_id)
    random.seed(base + worker_id)


def make_loader(dataset: TextDetectionDataset, config: TrainConfig, epoch: int, train: bool,
                runtime: Runtime) -> DataLoader:
    """A loader whose shuffling and augmentation depend only on (seed, epoch)."""
    base = config.seed * 100_003 + epoch * 1_009
    generator = torch.Generator().manual_seed(base)
    sampler = None
    if train and runtime.world > 1:
        sampler = DistributedSampler(dataset, num_replicas=runtime.world, rank=runtime.rank, seed=config.seed)
        sampler.set_epoch(epoch)
    if config.num_workers == 0:
        dataset.transform.set_random_seed(base)
    return DataLoader(dataset, batch_size=config.batch_size, shuffle=train and sampler is None, sampler=sampler,
                      num_workers=config.num_workers, generator=generator,
                      worker_init_fn=partial(_seed_worker, base=base) if config.num_workers else None,
                      pin_memory=runtime.device.type == "cuda", persistent_workers=False)


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


def model_for(config: TrainConfig, fresh: bool = True) -> torch.nn.Module:
    """The model ``config`` describes; ``fresh``: with its starting weights (a resumed run loads its own instead,
    but a PP-OCR detector always rebuilds from its ONNX file)."""
    return build_model(config.arch, pretrained=config.pretrained and fresh, decoder=config.decoder,
                       levels=tuple(config.levels) if config.levels else None,
                       pretrained_path=config.pretrained_path if fresh or config.arch == PPOCR_ARCH else None,
                       thresh_branch=config.thresh_branch, inner_channels=config.inner_channels)


def zero_shot_checkpoint(config: TrainConfig) -> Checkpoint:
    """A pretrained model saved untrained, with ``config``'s postprocess and evaluation size, so that the
    notebooks, ensembles and the submission treat a zero-shot detector like any trained checkpoint."""
    if not (config.pretrained or config.pretrained_path):
        raise InputError(f"{config.arch}: a zero-shot checkpoint needs pretrained weights (pretrained=True or "
                         "pretrained_path=FILE); random weights detect nothing")
    model = model_for(config).eval()
    return Checkpoint(model.state_dict(), model.config, config.postprocess, config.final_size,
                      run=f"zero-shot-{config.arch}", train_config=config.to_dict())


def parameter_groups(model: torch.nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """The new layers at ``lr``, then (with ``pretrained_lr_scale`` != 1) the pretrained part at ``lr`` x scale.

    The pretrained part is ``model.pretrained_part`` (DBNet's encoder, PP-OCR's converted graph), so the group a
    weight falls in never depends on a name pattern.
    """
    if config.pretrained_lr_scale == 1.0:
        return [{"params": list(model.parameters())}]
    pretrained = {id(p) for p in model.pretrained_part.parameters()}
    groups = [{"params": [p for p in model.parameters() if id(p) not in pretrained]},
              {"params": [p for p in model.parameters() if id(p) in pretrained],
               "lr": config.lr * config.pretrained_lr_scale}]
    return [g for g in groups if g["params"]]  # PP-OCR without its threshold head has no new layers


def build_optimizer(model: torch.nn.Module, config: TrainConfig,
                    steps: int = 1) -> tuple[torch.optim.Optimizer, Any]:
    """Adam or AdamW with cosine annealing after an optional linear warmup, per epoch or (``lr_interval="step"``)
    per optimizer step, ``steps`` of them an epoch; ``scheduler.step()`` is then called after each."""
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    optimizer = cls(parameter_groups(model, config), lr=config.lr, betas=tuple(config.betas),
                    weight_decay=config.weight_decay)
    unit = steps if config.lr_interval == "step" else 1
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.t_max * unit, eta_min=config.eta_min)
    if config.warmup_epochs <= 0:
        return optimizer, cosine
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0 / (config.warmup_epochs * unit + 1),
                                               total_iters=config.warmup_epochs * unit)
    return optimizer, torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine],
                                                            [config.warmup_epochs * unit])


@torch.no_grad()
def validate(model: torch.nn.Module, loader: DataLoader, gt: dict[str, list[np.ndarray]],
             postprocess_config: PostprocessConfig, runtime: Runtime, precision: str,
             progress: bool = True) -> dict[str, ImageResult]:
    """CLEval per image of this process's share of the validation images."""
    model.eval()
    accumulator = CLEvalAccumulator()
    for batch in tqdm(loader, desc="val", leave=False, disable=not progress):
        with autocast(runtime.device, precision):
            prob = model(batch["image"].to(runtime.device))["prob"][:, 0].float().cpu().numpy()
        for i, name in enumerate(batch["name"]):
            polygons, _ = postprocess(prob[i], tuple(batch["scale"][i].tolist()), tuple(batch["orig_size"][i].tolist()),
                                      postprocess_config)
            accumulator.update(name, gt[name], polygons)
    return accumulator.per_image


def gather_results(per_image: dict[str, ImageResult], runtime: Runtime) -> DatasetResult:
    """Dataset CLEval over every rank's images (the whole validation set, not one shard)."""
    if runtime.world > 1:
        shards: list[dict[str, ImageResult]] = [{} for _ in range(runtime.world)]
        dist.all_gather_object(shards, per_image)
        per_image = {k: v for shard in shards for k, v in shard.items()}
    return aggregate(per_image)


def checkpoint_name(epoch: int, hmean: float) -> str:
    """``best-epoch=09-val_hmean=0.9651.ckpt``."""
    return f"best-epoch={epoch:02d}-val_hmean={hmean:.4f}.ckpt"


# ----------------------------------------------------------------------------- the run


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
        self.log = logging.getLogger(f"kit.train.{run_dir.name}")
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


def train_one_epoch(model: torch.nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler, config: TrainConfig, runtime: Runtime, desc: str,
                    progress: bool, on_pace: Callable[[float, int], None] | None = None,
                    on_step: Callable[[], None] | None = None) -> dict[str, float]:
    """One pass over ``loader`` (gradient accumulation, clipping, mixed precision); the mean of each loss part.

    ``on_pace(seconds per step, steps in the epoch)`` is called once, after the first ``PACE_STEPS`` steps;
    ``on_step()`` after every optimizer step (the EMA update, a per-step lr schedule). A NaN or inf loss raises
    :class:`NonFiniteLoss` before it reaches the weights; ``skipped_steps`` counts the optimizer steps fp16's
    GradScaler skipped for inf/NaN gradients.
    """
    model.train()
    started = time.time()
    sums: dict[str, float] = {}
    steps = skipped = 0
    optimizer.zero_grad(set_to_none=True)
    bar = tqdm(loader, desc=desc, leave=False, disable=not progress)
    for step, batch in enumerate(bar):
        batch = to_device(batch, runtime.device, config.channels_last)
        with autocast(runtime.device, config.precision):
            outputs = model(batch["image"])
        losses = db_loss(outputs, batch, config.loss)
        if not torch.isfinite(losses["total"]):
            parts = {k: v.detach().item() for k, v in losses.items()}
            bad = next((k for k, v in parts.items() if k != "total" and not math.isfinite(v)), "total")
            raise NonFiniteLoss(f"step {step}: loss {bad} is {parts[bad]} (total {parts['total']})")
        scaler.scale(losses["total"] / config.grad_accum).backward()
        if (step + 1) % config.grad_accum == 0 or step + 1 == len(loader):
            if config.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scale = scaler.get_scale() if scaler.is_enabled() else None
            scaler.step(optimizer)
            scaler.update()
            if scale is not None and scaler.get_scale() < scale:  # fp16: inf/NaN gradients, the step was skipped
                skipped += 1
            optimizer.zero_grad(set_to_none=True)
            if on_step is not None:
                on_step()
        for key, value in losses.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach())
        steps += 1
        bar.set_postfix(loss=f"{sums['total'] / steps:.3f}")
        if on_pace is not None and steps == PACE_STEPS:
            on_pace((time.time() - started) / steps, len(loader))
    return {**{key: value / max(steps, 1) for key, value in sums.items()}, "skipped_steps": skipped}


@dataclass
class EarlyStopping:
    """The reports' rule: stop after ``patience`` epochs without a better val H-mean (never val loss)."""

    patience: int
    best_score: float = -1.0
    best_epoch: int = -1
    bad_epochs: int = 0

    @property
    def stop(self) -> bool:
        return self.bad_epochs >= self.patience

    def state(self) -> dict[str, Any]:
        """What a resumed run restores (patience comes from its config)."""
        return {"best_score": self.best_score, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def update(self, epoch: int, score: float) -> bool:
        """Record ``epoch``'s score; True when it is the best so far."""
        if score > self.best_score:
            self.best_score, self.best_epoch, self.bad_epochs = score, epoch, 0
            return True
        self.bad_epochs += 1
        return False


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


def train(config: TrainConfig, resume: Path | str | None = None, progress: bool = True,
          overwrite: bool = False) -> RunResult:
    """Train ``config``; with ``resume`` (a checkpoint of the same run) continue where it stopped.

    An existing run of the same name is an error unless ``overwrite`` (then it is replaced, with a warning).
    A new run that fails before finishing its first epoch leaves no run folder behind.
    """
    runtime = Runtime.start()
    config, run_dir, resumed = _start_run(config, resume, runtime, overwrite)
    if runtime.main:
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "config.json", json.dumps(config.to_dict(), indent=1))
    logger = _Logger(run_dir, config, runtime.main)
    try:
        return _run(config, run_dir, resumed, runtime, logger, progress and runtime.main)
    except BaseException:
        if runtime.main and resumed is None and not (run_dir / "metrics.csv").is_file():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        logger.close()


def _run(config: TrainConfig, run_dir: Path, resumed: Checkpoint | None, runtime: Runtime, logger: _Logger,
         show: bool) -> RunResult:
    """The run itself: data, model, optimizer, the epochs with validation and checkpoints, the summary row."""
    ckpt_dir = run_dir / "checkpoints"

    train_records, val_records, data_dir = load_records(config, announce=runtime.main)
    logger.info(f"data {data_dir}: {len(train_records)} train / {len(val_records)} val images")
    seed_everything(config.seed)
    model = model_for(config, fresh=resumed is None).to(runtime.device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer, scheduler = build_optimizer(model, config, steps_per_epoch(config, len(train_records), runtime.world))
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=config.precision == "fp16")
    ema = ModelEmaV3(model, decay=config.ema_decay, use_warmup=config.ema_warmup) if config.ema_decay else None
    history: list[dict[str, Any]] = []
    stopping = EarlyStopping(config.patience)
    best_path: str | None = None
    start_epoch = optimizer_steps = 0
    if resumed is not None:
        state = resumed.training_state
        model.load_state_dict(state.get("model_weights", resumed.weights))  # with EMA, weights are the average
        if ema is not None:
            ema.module.load_state_dict(resumed.weights)
        optimizer_steps = state.get("optimizer_steps", 0)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        stopping = EarlyStopping(config.patience, **state["early_stopping"])
        history, best_path, start_epoch = resumed.history, state["best_path"], resumed.epoch + 1
        logger.info(f"resumed from epoch {resumed.epoch} of {run_dir.name}")
    raw_model = model
    eval_model = ema.module if ema is not None else raw_model  # what validation scores and checkpoints hold

    def after_step() -> None:
        nonlocal optimizer_steps
        optimizer_steps += 1
        if ema is not None:
            ema.update(raw_model, step=optimizer_steps)
        if config.lr_interval == "step":
            scheduler.step()

    if runtime.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[runtime.device.index]
                                                          if runtime.device.type == "cuda" else None)

    norm = {"mean": raw_model.config.mean, "std": raw_model.config.std}
    train_ds = TextDetectionDataset(train_records, size_for_epoch(config.schedule, start_epoch), config.augment,
                                    config.targets, **norm)
    val_ds = TextDetectionDataset(val_records[runtime.rank::runtime.world], config.final_size, None, config.targets,
                                  **norm)
    val_gt = {r.name: r.polygons() for r in val_records}
    started = time.time() - sum(row["epoch_time_s"] for row in history)
    gpu_recipe_on_cpu = runtime.device.type == "cpu" and config.preset in REPORT_PRESETS and runtime.main

    for epoch in _epochs(start_epoch, config.epochs, show):
        if stopping.stop:
            break
        epoch_start = time.time()
        train_ds.size = size_for_epoch(config.schedule, epoch)
        shrink = shrink_ratio_for_epoch(config, epoch)
        train_ds.targets = replace(config.targets, shrink_ratio=shrink)
        # the postprocess inverts the shrink the model was last trained on (used when unclip_ratio is None)
        post = replace(config.postprocess, shrink_ratio=shrink) if config.shrink_ratio_end else config.postprocess
        if config.freeze_levels or config.freeze_epochs:
            raw_model.freeze_encoder(None if epoch < config.freeze_epochs else config.freeze_levels)
        pace = partial(_cpu_pace_warning, config, logger) if gpu_recipe_on_cpu and epoch == start_epoch else None
        lr = optimizer.param_groups[0]["lr"]
        try:
            losses = train_one_epoch(model, make_loader(train_ds, config, epoch, train=True, runtime=runtime),
                                     optimizer, scaler, config, runtime, f"epoch {epoch} @ {train_ds.size}px", show,
                                     pace, after_step)
        except NonFiniteLoss as err:
            last = f"{ckpt_dir / 'last.ckpt'} (epoch {history[-1]['epoch']})" if history else None
            kept = f"the last good checkpoint is {last}" if last else "no epoch finished"
            logger.info(f"stopped: epoch {epoch}, {err}")
            raise NonFiniteLoss(f"{run_dir.name}: epoch {epoch}, {err}; {kept}. Lower lr, set grad_clip, or use "
                                "fp32") from None
        skipped = losses.pop("skipped_steps")
        if skipped:
            logger.info(f"epoch {epoch}: fp16 skipped {skipped} optimizer steps (inf/NaN gradients)")
        if config.lr_interval == "epoch":
            scheduler.step()
        train_time = time.time() - epoch_start
        val_loader = make_loader(val_ds, config, epoch, train=False, runtime=runtime)
        scores = gather_results(validate(eval_model, val_loader, val_gt, post, runtime, config.precision, show),
                                runtime)
        row = {"epoch": epoch, "lr": lr, "size": train_ds.size, "shrink_ratio": shrink,
               **{f"loss_{k}": v for k, v in losses.items()}, "skipped_steps": skipped,
               "val_precision": scores.precision, "val_recall": scores.recall, "val_hmean": scores.hmean,
               "val_images": len(scores.per_image), "epoch_time_s": time.time() - epoch_start,
               "train_images_per_s": len(train_records) / max(train_time, 1e-9),
               "peak_memory_mb": peak_memory_mb(runtime.device)}
        history.append(row)
        improved = stopping.update(epoch, scores.hmean)
        if not runtime.main:
            continue
        previous_best = best_path
        if improved:
            best_path = str(ckpt_dir / checkpoint_name(epoch, scores.hmean))
        training_state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                          "scaler": scaler.state_dict(), "early_stopping": stopping.state(), "best_path": best_path,
                          "optimizer_steps": optimizer_steps}
        if ema is not None:  # the checkpoint's weights are the average; resume needs the trained ones too
            training_state["model_weights"] = raw_model.state_dict()
        checkpoint = Checkpoint(
            eval_model.state_dict(), raw_model.config, post, config.final_size, run=run_dir.name, epoch=epoch,
            val=scores.scores(), history=list(history), train_config=config.to_dict(), training_state=training_state)
        if improved:
            checkpoint.save(best_path)  # the new best is on disk before the old one goes
            if previous_best and previous_best != best_path:
                Path(previous_best).unlink(missing_ok=True)
            write_csv(per_image_scores(scores), run_dir / VAL_PER_IMAGE)
        # the curve before last.ckpt: a kill between them makes the resumed run redo (and rewrite) this epoch
        write_csv(pd.DataFrame(history), run_dir / "metrics.csv", index=False)
        checkpoint.save(ckpt_dir / "last.ckpt")
        logger.epoch(row)
        logger.info(json.dumps(row))

    best_row = next((r for r in history if r["epoch"] == stopping.best_epoch), {})
    summary = {
        "run": run_dir.name, "arch": config.arch, "preset": config.preset,
        "fold": "val" if config.fold is None else config.fold, "params": count_parameters(raw_model), "lr": config.lr,
        "weight_decay": config.weight_decay, "epochs_run": len(history), "best_epoch": stopping.best_epoch,
        **{f"val_{k}": best_row.get(f"val_{k}", math.nan) for k in ("precision", "recall", "hmean")},
        "train_time_s": time.time() - started, "peak_memory_mb": max((r["peak_memory_mb"] for r in history), default=0),
        "seed": config.seed, "finished": datetime.now().isoformat(timespec="seconds"),
    }
    summary["pr_gap"] = summary["val_precision"] - summary["val_recall"]
    if runtime.main:
        append_row(project_path(config.output_dir) / RUNS_CSV, summary)
        logger.info(f"done: {json.dumps(summary)}")
    return RunResult(run_dir, Path(best_path) if best_path else None, ckpt_dir / "last.ckpt",
                     pd.DataFrame(history), summary)


def command(args: argparse.Namespace) -> None:
    """``python -m kit train``: the run's summary as one JSON line (rank 0 under torchrun)."""
    result = train(resolve_config(args.preset, **parse_overrides(args.set)), resume=args.resume,
                   overwrite=args.overwrite)
    if not dist.is_initialized() or dist.get_rank() == 0:
        print(json.dumps(result.summary, default=str))
    if dist.is_initialized():
        dist.destroy_process_group()


def pretrained_command(args: argparse.Namespace) -> None:
    """``python -m kit pretrained``: write the zero-shot checkpoint and say where."""
    config = config_for(args.arch, args.preset, **parse_overrides(args.set))
    checkpoint = zero_shot_checkpoint(config)
    path = checkpoint.save(project_path(args.out))
    print(f"{args.arch} ({config.preset or 'defaults'}, weights {checkpoint.model_config.weights}): "
          f"zero-shot checkpoint {path}")


if __name__ == "__main__":
    run_cli("train")
