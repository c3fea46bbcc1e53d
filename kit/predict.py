"""Inference: probability maps and polygons in original image coordinates."""

from __future__ import annotations

import numpy as np
import torch

from kit.dataset import build_transform, letterbox
from kit.postprocess import PostprocessConfig, postprocess

_NORMALIZE = build_transform(None)


def image_tensor(image: np.ndarray, size: int) -> tuple[torch.Tensor, tuple[float, float]]:
    """An RGB image letterboxed to ``size`` and normalised as in training: (1, 3, size, size) and its scale."""
    canvas, scale = letterbox(image, size)
    normalised = _NORMALIZE(image=canvas)["image"]
    return torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1)))[None], scale


@torch.no_grad()
def predict_image(model: torch.nn.Module, image: np.ndarray, size: int, config: PostprocessConfig | None = None,
                  device: str | torch.device = "cpu") -> tuple[list[np.ndarray], list[float]]:
    """Polygons (original image coordinates) and scores for one RGB image."""
    tensor, scale = image_tensor(image, size)
    prob = model.eval()(tensor.to(device))["prob"][0, 0].float().cpu().numpy()
    height, width = image.shape[:2]
    return postprocess(prob, scale, (width, height), config)
