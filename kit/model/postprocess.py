"""Probability map -> word polygons in original image coordinates (DBNet's postprocess, fixed).

Steps: binarize at ``thresh``; find the connected text regions (8-connected, opencv);
score each by its mean probability (one ``bincount`` over the labelled map for all
regions, instead of a mask per region); drop those under ``box_thresh``; sort by score
*before* capping at ``max_candidates`` (DBNet capped unscored contours); simplify the
contour (polygon mode) or take its minimum-area rectangle (quad mode); unclip with
pyclipper; check the minimum size *after* unclipping; map to the original image, clip to
it, drop repeated and collinear vertices and keep at most ``max_vertices`` (polygon mode,
:func:`kit.geometry.clean_polygon`), and drop results without area.

``unclip_ratio`` is DBNet's: grow by ``D' = A' * ratio / L'`` (area and perimeter of the
region's contour). ``None`` instead inverts the training shrink exactly (see
:func:`inverse_shrink_distance`), which recovers the annotated polygon from a perfect
kernel; trained models' maps are wider than their kernels, which the empirical ratios
(2.0 polygons, 1.5 quads) account for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from kit.errors import InputError
from kit.geometry import SHRINK_RATIO, clean_polygon, inverse_shrink_distance, offset_polygon, orient_clockwise

#: Contour simplification tolerance, as a fraction of the contour's perimeter.
APPROX_EPSILON = 0.002


@dataclass
class PostprocessConfig:
    """Postprocess settings; the defaults are the competition teams'."""

    thresh: float = 0.3
    box_thresh: float = 0.4
    max_candidates: int = 500
    unclip_ratio: float | None = 2.0
    output: str = "polygon"  # or "quad"
    min_size: float = 3.0
    #: Polygon output: at most this many vertices (see :func:`kit.geometry.clean_polygon`).
    max_vertices: int = 32
    shrink_ratio: float = SHRINK_RATIO  # used when unclip_ratio is None

    def __post_init__(self) -> None:
        if self.output not in ("polygon", "quad"):
            raise InputError(f"output must be 'polygon' or 'quad', got {self.output!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _unclip_distance(contour: np.ndarray, config: PostprocessConfig) -> float:
    """How far to grow a region's contour (through pixel centres)."""
    area = abs(cv2.contourArea(contour.astype(np.float32)))
    length = cv2.arcLength(contour.astype(np.float32), True)
    if config.unclip_ratio is not None:
        return area * config.unclip_ratio / length if length > 0 else 0.0
    # The contour runs through the border pixels' centres, half a pixel inside the region it outlines.
    return inverse_shrink_distance(area + 0.5 * length + 1.0, length + 4.0, config.shrink_ratio) + 0.5


def _quad(points: np.ndarray) -> np.ndarray:
    """Minimum-area rectangle of ``points``, starting at the corner nearest the top-left."""
    box = cv2.boxPoints(cv2.minAreaRect(points.astype(np.float32))).astype(np.float64)
    box = orient_clockwise(box)
    return np.roll(box, -int(np.argmin(box.sum(1))), axis=0)


def score_regions(prob: np.ndarray, config: PostprocessConfig) -> tuple[list[np.ndarray], np.ndarray]:
    """Outer contours of the regions above ``thresh`` and each region's mean probability.

    One connected-components pass labels every region and one ``bincount`` sums its
    probabilities, instead of filling a mask per contour.
    """
    bitmap = (prob > config.thresh).astype(np.uint8)
    n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(bitmap, connectivity=8)
    contours, _ = cv2.findContours(bitmap, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if n_labels <= 1:
        return [], np.zeros(0)
    inside = bitmap.astype(bool)
    sums = np.bincount(labels[inside], weights=prob[inside].astype(np.float64), minlength=n_labels)
    means = sums / np.maximum(stats[:, cv2.CC_STAT_AREA], 1)
    return list(contours), np.array([means[labels[c[0, 0, 1], c[0, 0, 0]]] for c in contours])


def polygons_from_regions(contours: list[np.ndarray], scores: np.ndarray, scale: tuple[float, float],
                          image_size: tuple[int, int],
                          config: PostprocessConfig) -> tuple[list[np.ndarray], list[float]]:
    """Filter, rank, cap, unclip, size-check, map back and clip the scored regions."""
    order = sorted((i for i in range(len(contours)) if scores[i] >= config.box_thresh), key=lambda i: -scores[i])
    width, height = image_size
    polygons: list[np.ndarray] = []
    kept_scores: list[float] = []
    for i in order:
        if len(polygons) >= config.max_candidates:
            break
        contour = contours[i].reshape(-1, 2).astype(np.float64)
        shape = _quad(contour)
        if config.output == "polygon":
            approx = cv2.approxPolyDP(contours[i], APPROX_EPSILON * cv2.arcLength(contours[i], True), True)
            if len(approx) >= 4:
                shape = approx.reshape(-1, 2).astype(np.float64)
        grown = offset_polygon(shape + 0.5, _unclip_distance(contour, config))  # + 0.5: centres -> pixel frame
        if not grown:
            continue
        grown_shape = max(grown, key=lambda p: abs(cv2.contourArea(p.astype(np.float32))))
        if min(cv2.minAreaRect(grown_shape.astype(np.float32))[1]) < config.min_size + 2:
            continue
        if config.output == "quad":
            grown_shape = _quad(grown_shape)
        result = grown_shape / np.asarray(scale, np.float64)
        result = np.clip(result, 0.0, np.asarray([width, height], np.float64))
        if config.output == "polygon":
            result = clean_polygon(result, config.max_vertices)
        if result is None or abs(cv2.contourArea(result.astype(np.float32))) < 1.0:
            continue
        polygons.append(orient_clockwise(result))
        kept_scores.append(float(scores[i]))
    return polygons, kept_scores


def postprocess(prob: np.ndarray, scale: tuple[float, float], image_size: tuple[int, int],
                config: PostprocessConfig | None = None) -> tuple[list[np.ndarray], list[float]]:
    """Polygons (N_i, 2) in original image coordinates and their scores, best first.

    ``prob``: (H, W) probability map of the network input; ``scale``: (sx, sy) from the
    original image to that input (see :func:`kit.data.dataset.letterbox`); ``image_size``:
    the original (width, height). The letterbox padding beyond the image is cropped off first.
    """
    config = config or PostprocessConfig()
    valid = prob[: round(image_size[1] * scale[1]), : round(image_size[0] * scale[0])]
    return polygons_from_regions(*score_regions(valid, config), scale, image_size, config)
