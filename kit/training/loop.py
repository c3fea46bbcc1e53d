"""The pieces of the training loop: loaders seeded by (seed, epoch), the model and optimizer a config describes,
one epoch of steps, validation by CLEval, early stopping on val H-mean. ``kit.training.run`` puts them together."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, get_worker_info
from tqdm import tqdm

from kit.data.dataset import TextDetectionDataset
from kit.errors import NonFiniteLoss
from kit.evaluation.cleval import CLEvalAccumulator, DatasetResult, ImageResult, aggregate
from kit.model.config import ModelSettings
from kit.model.factory import build
from kit.model.family import family_of
from kit.model.loss import db_loss
from kit.model.postprocess import PostprocessConfig, postprocess
from kit.runtime import Runtime, autocast, to_device
from kit.training.config import TrainConfig

#: Steps after which a report preset on a CPU says how long its run would take.
PACE_STEPS = 3
#: A batch's targets rewritten before the loss (``Teacher.targets``).
Targets = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]


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


def model_for(config: TrainConfig, fresh: bool = True) -> torch.nn.Module:
    """The model ``config`` describes; ``fresh``: with its starting weights (a resumed run loads its own instead,
    but a family whose graph comes from its file, PP-OCR's, always rebuilds from that file)."""
    from_file = fresh or family_of(config.arch).graph_from_file
    return build(ModelSettings.of(config, pretrained=config.pretrained and fresh,
                                  pretrained_path=config.pretrained_path if from_file else None))


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
             postprocess_config: PostprocessConfig, runtime: Runtime, precision: str, *,
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


def batch_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor], config: TrainConfig,
               runtime: Runtime, targets: Targets | None = None) -> dict[str, torch.Tensor]:
    """The DB loss of one batch as training computes it: moved to the device (channels_last if set), its targets
    rewritten by ``targets`` (a teacher's, :mod:`kit.training.teacher`), the forward under the run's autocast
    precision, the loss in fp32."""
    batch = to_device(batch, runtime.device, config.channels_last)
    with autocast(runtime.device, config.precision):
        if targets is not None:
            batch = targets(batch)
        outputs = model(batch["image"])
    return db_loss(outputs, batch, config.loss)


def train_one_epoch(model: torch.nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler, config: TrainConfig, runtime: Runtime, *, desc: str = "train",
                    progress: bool = True, on_pace: Callable[[float, int], None] | None = None,
                    on_step: Callable[[], None] | None = None, targets: Targets | None = None) -> dict[str, float]:
    """One pass over ``loader`` (gradient accumulation, clipping, mixed precision); the mean of each loss part.

    ``on_pace(seconds per step, steps in the epoch)`` is called once, after the first ``PACE_STEPS`` steps;
    ``on_step()`` after every optimizer step (the EMA update, a per-step lr schedule); ``targets`` rewrites each
    batch's targets (a teacher's). A NaN or inf loss raises :class:`NonFiniteLoss` before it reaches the weights;
    ``skipped_steps`` counts the optimizer steps fp16's GradScaler skipped for inf/NaN gradients.
    """
    model.train()
    started = time.time()
    sums: dict[str, float] = {}
    steps = skipped = 0
    optimizer.zero_grad(set_to_none=True)
    bar = tqdm(loader, desc=desc, leave=False, disable=not progress)
    for step, batch in enumerate(bar):
        losses = batch_loss(model, batch, config, runtime, targets)
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
