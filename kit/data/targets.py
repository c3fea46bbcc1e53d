"""DBNet training targets from word polygons: shrunk kernels, threshold map and their masks.

Coordinates are continuous pixels: pixel (row i, col j) covers [j, j+1] x [i, i+1] and a
pixel belongs to a polygon when its centre (j + 0.5, i + 0.5) lies inside. The kernel is
the polygon shrunk by DBNet's offset D (:mod:`kit.geometry`); the threshold map
rises from ``thresh_min`` far from the text to ``thresh_max`` on the polygon border,
inside the border band (the polygon dilated by D), as in DBNet. Polygons flagged
degenerate, smaller than ``min_text_size`` or whose kernel vanishes are masked as
don't-care instead. Written with opencv/numpy per polygon (it runs per image per epoch on
the CPU); ``tests/reference.py`` holds the per-pixel version it is proven against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from kit.geometry import SHRINK_RATIO, offset_distance, offset_polygon, points_in_polygon, segment_distances


@dataclass
class TargetConfig:
    """DBNet's target settings (the paper's and the competition baseline's values)."""

    shrink_ratio: float = SHRINK_RATIO
    thresh_min: float = 0.3
    thresh_max: float = 0.7
    min_text_size: float = 8.0


def _pixel_window(polygon: np.ndarray, shape: tuple[int, ...]) -> tuple[slice, slice] | None:
    """Rows and columns of the pixels whose centres can fall inside ``polygon``."""
    x0, y0 = np.maximum(np.floor(polygon.min(0) - 0.5).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(polygon.max(0) + 0.5).astype(int), [shape[1], shape[0]])
    if x1 <= x0 or y1 <= y0:
        return None
    return slice(y0, y1), slice(x0, x1)


def _centres(window: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[window[0], window[1]].astype(np.float64)
    return xs + 0.5, ys + 0.5


def fill_polygons(canvas: np.ndarray, polygons: Sequence[np.ndarray], value: float) -> None:
    """Set ``value`` on every pixel whose centre lies inside one of ``polygons``."""
    for polygon in polygons:
        window = _pixel_window(polygon, canvas.shape)
        if window is not None:
            canvas[window][points_in_polygon(polygon, *_centres(window))] = value


def _draw_border(canvas: np.ndarray, band_mask: np.ndarray, polygon: np.ndarray, distance: float) -> None:
    """Raise ``canvas`` to 1 - dist/D and set ``band_mask`` inside the polygon dilated by D.

    The dilated polygon (rounded joins) is exactly the polygon plus every point within D
    of its border, so the band needs no clipping: one distance pass gives both maps.
    """
    reach = np.array([distance, distance])
    window = _pixel_window(np.concatenate([polygon.min(0) - reach, polygon.max(0) + reach]).reshape(2, 2),
                           canvas.shape)
    if window is None:
        return
    xs, ys = _centres(window)
    dist = segment_distances(xs, ys, polygon)
    band_mask[window][(dist <= distance) | points_in_polygon(polygon, xs, ys)] = 1.0
    np.maximum(canvas[window], 1.0 - np.clip(dist / distance, 0.0, 1.0), out=canvas[window])


def make_targets(polygons: Sequence[np.ndarray], height: int, width: int,
                 dont_care: Sequence[bool] | None = None, config: TargetConfig | None = None) -> dict[str, np.ndarray]:
    """DBNet maps (float32, ``height`` x ``width``) for polygons in this image's pixel frame.

    Returns ``gt`` (1 on shrunk kernels), ``mask`` (0 on don't-care regions), ``thresh_map``
    and ``thresh_mask`` (1 inside the border bands, where the threshold loss counts).
    Polygon vertices outside the image are clipped to it first.
    """
    config = config or TargetConfig()
    dont_care = list(dont_care) if dont_care is not None else [False] * len(polygons)
    gt = np.zeros((height, width), np.float32)
    mask = np.ones((height, width), np.float32)
    canvas = np.zeros((height, width), np.float32)
    thresh_mask = np.zeros((height, width), np.float32)
    bounds = np.array([width, height], np.float64)
    for raw, ignore in zip(polygons, dont_care):
        polygon = np.clip(np.asarray(raw, np.float64).reshape(-1, 2), 0.0, bounds)
        extent = cv2.minAreaRect(polygon.astype(np.float32))[1]
        distance = offset_distance(polygon, config.shrink_ratio)
        if ignore or min(extent) < config.min_text_size or distance <= 0:
            fill_polygons(mask, [polygon], 0.0)
            continue
        kernel = offset_polygon(polygon, -distance)
        if not kernel:
            fill_polygons(mask, [polygon], 0.0)
            continue
        fill_polygons(gt, kernel, 1.0)
        _draw_border(canvas, thresh_mask, polygon, distance)
    thresh_map = canvas * (config.thresh_max - config.thresh_min) + config.thresh_min
    return {"gt": gt, "mask": mask, "thresh_map": thresh_map.astype(np.float32), "thresh_mask": thresh_mask}
