"""The DB head both detectors share: the branch that maps fused features to a map, and the outputs it returns.

Training returns logits and computes the threshold map and the approximate binary map
``1 / (1 + exp(-k (P - T)))`` in fp32, so autocast cannot saturate them; evaluation returns
only the probability map and skips the threshold branch.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


def branch(inner: int) -> nn.Sequential:
    """3x3 conv then two stride-2 transposed convs: stride 4 -> input resolution, one logit channel."""
    return nn.Sequential(
        nn.Conv2d(inner, inner // 4, 3, padding=1, bias=False), nn.BatchNorm2d(inner // 4), nn.ReLU(inplace=True),
        nn.ConvTranspose2d(inner // 4, inner // 4, 2, stride=2), nn.BatchNorm2d(inner // 4), nn.ReLU(inplace=True),
        nn.ConvTranspose2d(inner // 4, 1, 2, stride=2),
    )


def pad_to_multiple(images: torch.Tensor, stride: int) -> torch.Tensor:
    """Zero-pad bottom/right so both sides are multiples of ``stride`` (what the decoders need)."""
    height, width = images.shape[-2:]
    return F.pad(images, (0, -width % stride, 0, -height % stride))


def db_outputs(prob_logits: torch.Tensor, size: tuple[int, int], training: bool, k: float,
               thresh_logits: Callable[[], torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """The kit's model outputs from head logits of the padded input, cropped to ``size`` (height, width), fp32.

    Evaluation: ``{"prob"}`` (the threshold branch is not run). Training: ``{"prob_logits"}``,
    plus ``{"thresh", "binary"}`` when the model has a threshold branch (``thresh_logits``).
    """
    height, width = size
    prob_logits = prob_logits[..., :height, :width].float()
    if not training:
        return {"prob": torch.sigmoid(prob_logits)}
    if thresh_logits is None:
        return {"prob_logits": prob_logits}
    thresh = torch.sigmoid(thresh_logits()[..., :height, :width].float())
    binary = torch.sigmoid(k * (torch.sigmoid(prob_logits) - thresh))
    return {"prob_logits": prob_logits, "thresh": thresh, "binary": binary}
