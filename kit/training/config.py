"""What a training run is: :class:`TrainConfig` (typed and validated, stored in every checkpoint), how a preset
and overrides become one, and the settings that change over epochs (resolution, shrink ratio)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from kit.data.dataset import AugConfig
from kit.data.targets import TargetConfig
from kit.errors import InputError
from kit.model.config import ModelSettings
from kit.model.family import detector_names, family_of
from kit.model.loss import LossConfig
from kit.model.postprocess import PostprocessConfig
from kit.runtime import PRECISIONS
from kit.training.presets import ARCH_PRESETS, FAMILY_PRESETS, PRESETS
from kit.training.presets import preset as load_preset

NESTED = {"augment": AugConfig, "loss": LossConfig, "targets": TargetConfig, "postprocess": PostprocessConfig}
LR_INTERVALS = ("epoch", "step")
#: ``TrainConfig.teacher``'s value for the run's own starting detector (:mod:`kit.training.teacher`).
TEACHER_START = "start"


@dataclass
class TrainConfig(ModelSettings):
    """Everything a run needs; saved as ``config.json`` in the run folder and in every checkpoint.

    The model's settings (``arch``, ``pretrained``, ``pretrained_path``, ``decoder``, ``levels``, ``k``,
    ``thresh_branch``, ``inner_channels``) are :class:`~kit.model.config.ModelSettings`' own, inherited.
    """

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
    #: Distillation (:mod:`kit.training.teacher`): a frozen detector's kernels, binarized at ``teacher_thresh``,
    #: are learnt inside the labelled words' regions, its detections elsewhere unlearnt. "start": the run's own
    #: pretrained PP-OCR detector; a zoo member's name (``ppocr_v4_mobile``); a checkpoint file; or a list of
    #: those (or one string of them, comma-separated), whose maps are averaged. None (or "none", which overrides
    #: can pass where None keeps the preset's): the dataset's kernels alone.
    teacher: str | list[str] | None = None
    teacher_thresh: float = 0.3
    epochs: int = 20
    patience: int = 5
    batch_size: int = 8
    grad_accum: int = 1
    grad_clip: float | None = None
    precision: str = "fp32"
    channels_last: bool = False
    #: ``torch.compile`` the training forward (a GPU's speed-up; on a CPU it needs a C++ compiler and minutes of
    #: compiling). Validation and checkpoints use the model as built.
    compile: bool = False
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
        super().__post_init__()
        family = family_of(self.arch)
        for name, cls in NESTED.items():
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, cls(**value))
        if self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if self.optimizer not in ("adam", "adamw"):
            raise InputError(f"optimizer must be 'adam' or 'adamw', got {self.optimizer!r}")
        if (self.freeze_levels or self.freeze_epochs) and not family.freezable:
            raise InputError(f"freeze_levels / freeze_epochs apply to timm backbones; {self.arch} is one graph "
                             f"({family.name})")
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
        if isinstance(self.teacher, str) and self.teacher.lower() == "none":
            self.teacher = None
        if isinstance(self.teacher, str) and "," in self.teacher:
            self.teacher = [t.strip() for t in self.teacher.split(",") if t.strip()]
        if isinstance(self.teacher, (list, tuple)):
            if not self.teacher or not all(isinstance(t, str) and t for t in self.teacher):
                raise InputError(f"teacher must name one or more detectors or checkpoints, got {self.teacher!r}")
            self.teacher = list(self.teacher) if len(self.teacher) > 1 else self.teacher[0]
        pretrained = self.pretrained or self.pretrained_path
        if TEACHER_START in self.teachers and not (family.detects_zero_shot and pretrained):
            raise InputError(f"teacher={TEACHER_START!r} distils the run's own pretrained detector, which only a "
                             f"pretrained detector ({', '.join(detector_names())}) has (a timm DBNet's new head "
                             "detects nothing); give a checkpoint file as the teacher instead")
        if not 0.0 < self.teacher_thresh < 1.0:
            raise InputError(f"teacher_thresh must be in (0, 1), got {self.teacher_thresh}")
        if not self.schedule or self.schedule[0][0] != 0:
            raise InputError(f"schedule must start at epoch 0, e.g. [[0, 640], [4, 960]]; got {self.schedule}")

    @property
    def teachers(self) -> list[str]:
        """The teachers, one or several (their maps averaged); none without distillation."""
        return [] if self.teacher is None else [self.teacher] if isinstance(self.teacher, str) else list(self.teacher)

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
    presets are named by backbone; every zoo detector's is ``ppocr_cpu``); with another preset,
    ``arch`` replaces its backbone."""
    name = preset or (arch if arch in PRESETS else ARCH_PRESETS.get(arch) or FAMILY_PRESETS.get(family_of(arch).name))
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
