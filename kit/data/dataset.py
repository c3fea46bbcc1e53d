"""The data pipeline: letterbox to the training size, augment with polygons, make DBNet targets.

The resolution is set in one place, ``TextDetectionDataset.size``: every image is resized
so its longest side is ``size`` and padded (bottom/right) to ``size`` x ``size``;
:func:`letterbox` returns the exact per-axis scale, and :func:`to_original` inverts it.
Augmentations (albumentations) move every polygon vertex with the image, as one flat
keypoint list that never drops a point (``remove_invisible=False``): a vertex pushed out
of frame is clipped when the targets are drawn, so later polygons are never scrambled.
albumentations treats keypoints as pixel centres; polygons here use pixel edges
(pixel j spans [j, j+1]), so they are shifted by half a pixel around the transform, which
keeps flips (x -> W - x) and rotations exact.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from kit.data.annotations import ImageRecord, read_image
from kit.data.targets import TargetConfig, make_targets

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class AugConfig:
    """Training augmentation (the reports': rotation 15 deg, color jitter 0.2, blur, h/v flips)."""

    rotate_limit: float = 15.0
    rotate_p: float = 0.5
    color_jitter: float = 0.2
    hue: float = 0.05
    color_p: float = 0.5
    brightness_contrast: float = 0.2
    brightness_contrast_p: float = 0.3
    blur_limit: tuple[int, int] = (3, 5)
    blur_p: float = 0.2
    hflip_p: float = 0.5
    vflip_p: float = 0.5
    #: Train on random ``crop`` x ``crop`` windows of the resized image instead of the whole letterbox
    #: (how DBNet and PaddleOCR train): the resolution of ``size`` at the cost of a ``crop`` batch.
    crop: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def letterbox_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) of an image resized so that its longest side is ``size``."""
    ratio = size / max(height, width)
    return max(1, round(width * ratio)), max(1, round(height * ratio))


def letterbox(image: np.ndarray, size: int, multiple: int | None = None) -> tuple[np.ndarray, tuple[float, float]]:
    """Resize so the longest side is ``size``, pad bottom/right with zeros to ``size`` x ``size`` (training's
    square batches), or with ``multiple`` each side only up to a multiple of it (what a stride-32 network needs:
    a 1280 x 960 receipt stays 1280 x 960 instead of 1280 x 1280).

    Returns the canvas and (sx, sy): the exact scale of each axis (rounding the resized
    side makes them differ slightly); a point (x, y) maps to (x * sx, y * sy).
    """
    height, width = image.shape[:2]
    new_w, new_h = letterbox_size(width, height, size)
    canvas_h, canvas_w = (size, size) if multiple is None else (-(-new_h // multiple) * multiple,
                                                                -(-new_w // multiple) * multiple)
    canvas = np.zeros((canvas_h, canvas_w) + image.shape[2:], image.dtype)
    interpolation = cv2.INTER_AREA if new_w < width else cv2.INTER_LINEAR
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    return canvas, (new_w / width, new_h / height)


def to_original(polygons: Sequence[np.ndarray], scale: tuple[float, float]) -> list[np.ndarray]:
    """Polygons from letterboxed coordinates back to the original image's."""
    factor = np.array([1.0 / scale[0], 1.0 / scale[1]])
    return [np.asarray(p, np.float64) * factor for p in polygons]


def build_transform(augment: AugConfig | None, mean: Sequence[float] = IMAGENET_MEAN,
                    std: Sequence[float] = IMAGENET_STD) -> A.Compose:
    """Augmentations (none for evaluation) then the model's normalisation, carrying keypoints."""
    steps: list[A.BasicTransform] = []
    if augment is not None and augment.crop:
        steps = [A.PadIfNeeded(min_height=augment.crop, min_width=augment.crop, position="top_left",
                               border_mode=cv2.BORDER_CONSTANT, fill=0),
                 A.RandomCrop(height=augment.crop, width=augment.crop)]
    if augment is not None:
        steps += [
            A.Rotate(limit=augment.rotate_limit, border_mode=cv2.BORDER_CONSTANT, fill=0, p=augment.rotate_p),
            A.HorizontalFlip(p=augment.hflip_p),
            A.VerticalFlip(p=augment.vflip_p),
            A.ColorJitter(brightness=augment.color_jitter, contrast=augment.color_jitter,
                          saturation=augment.color_jitter, hue=augment.hue, p=augment.color_p),
            A.RandomBrightnessContrast(brightness_limit=augment.brightness_contrast,
                                       contrast_limit=augment.brightness_contrast, p=augment.brightness_contrast_p),
            A.GaussianBlur(blur_limit=augment.blur_limit, p=augment.blur_p),
        ]
    steps.append(A.Normalize(mean=tuple(mean), std=tuple(std)))
    if augment is None:  # nothing moves: polygons need no keypoint processing
        return A.Compose(steps)
    return A.Compose(steps, keypoint_params=A.KeypointParams(format="xy", remove_invisible=False))


def transform_with_polygons(transform: A.Compose, image: np.ndarray,
                            polygons: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Apply ``transform`` to the image and to every polygon vertex as one unit."""
    if "keypoints" not in transform.processors:
        return transform(image=image)["image"], list(polygons)
    counts = [len(p) for p in polygons]
    flat = np.concatenate(polygons) - 0.5 if polygons else np.zeros((0, 2))
    out = transform(image=image, keypoints=flat)
    moved = np.asarray(out["keypoints"], np.float64).reshape(-1, 2)[:, :2] + 0.5
    return out["image"], np.split(moved, np.cumsum(counts)[:-1]) if polygons else []


class TextDetectionDataset(Dataset):
    """Images and DBNet targets at ``size`` x ``size`` (or ``augment.crop`` windows); ``augment=None`` for evaluation.

    ``mean`` / ``std``: the model's input normalisation (``model.config.mean`` / ``.std``).
    """

    def __init__(self, records: Sequence[ImageRecord], size: int, augment: AugConfig | None = None,
                 targets: TargetConfig | None = None, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD):
        self.records = list(records)
        self.size = size
        self.crop = augment.crop if augment is not None else None
        self.transform = build_transform(augment, mean, std)
        self.targets = targets or TargetConfig()

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        pixels = read_image(record.path)
        canvas, (sx, sy) = letterbox(pixels, self.size)
        if self.crop:  # crop windows from the image, not its padding
            valid_w, valid_h = letterbox_size(pixels.shape[1], pixels.shape[0], self.size)
            canvas = canvas[:valid_h, :valid_w]
        polygons = [w.points * [sx, sy] for w in record.words]
        image, polygons = transform_with_polygons(self.transform, canvas, polygons)
        side = self.crop or self.size
        maps = make_targets(polygons, side, side, [w.degenerate for w in record.words], self.targets)
        item: dict[str, Any] = {k: torch.from_numpy(v)[None] for k, v in maps.items()}
        item["image"] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        item["name"] = record.name
        item["scale"] = torch.tensor([sx, sy], dtype=torch.float64)
        item["orig_size"] = torch.tensor([record.width, record.height])
        return item
