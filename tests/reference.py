"""Straightforward reference versions that the fast kit code is proven against (tests) and timed against (bench).

They follow the same rules with independent, simple means: shapely geometry and a loop
over pixels for the targets; one filled mask per candidate for the postprocess scores.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import shapely

from kit.data import ImageRecord, read_image
from kit.dataset import letterbox
from kit.postprocess import PostprocessConfig, postprocess
from kit.targets import TargetConfig, make_targets


def reference_targets(polygons: Sequence[np.ndarray], height: int, width: int,
                      dont_care: Sequence[bool] | None = None,
                      config: TargetConfig | None = None) -> dict[str, np.ndarray]:
    """DBNet targets pixel by pixel: shapely's buffer for the kernel, its distance for the border."""
    config = config or TargetConfig()
    dont_care = list(dont_care) if dont_care is not None else [False] * len(polygons)
    gt = np.zeros((height, width), np.float32)
    mask = np.ones((height, width), np.float32)
    canvas = np.zeros((height, width), np.float32)
    thresh_mask = np.zeros((height, width), np.float32)

    def pixels_near(shape: shapely.Geometry, margin: float = 0.0):
        x0, y0, x1, y1 = shape.bounds
        for row in range(max(0, int(y0 - margin) - 1), min(height, int(y1 + margin) + 2)):
            for col in range(max(0, int(x0 - margin) - 1), min(width, int(x1 + margin) + 2)):
                yield row, col, shapely.Point(col + 0.5, row + 0.5)

    for raw, ignore in zip(polygons, dont_care):
        points = np.clip(np.asarray(raw, np.float64), 0, [width, height])
        poly = shapely.Polygon(points)
        side = min(cv2.minAreaRect(points.astype(np.float32))[1])
        distance = poly.area * (1 - config.shrink_ratio**2) / poly.length if poly.length else 0.0
        kernel = poly.buffer(-distance, join_style="mitre") if distance > 0 else shapely.Polygon()
        if ignore or side < config.min_text_size or distance <= 0 or kernel.is_empty:
            for row, col, centre in pixels_near(poly):
                if poly.contains(centre):
                    mask[row, col] = 0
            continue
        for row, col, centre in pixels_near(kernel):
            if kernel.contains(centre):
                gt[row, col] = 1
        for row, col, centre in pixels_near(poly, distance):
            d = poly.exterior.distance(centre)
            if d <= distance or poly.contains(centre):
                thresh_mask[row, col] = 1
            canvas[row, col] = max(canvas[row, col], 1 - min(d / distance, 1.0))
    thresh_map = canvas * (config.thresh_max - config.thresh_min) + config.thresh_min
    return {"gt": gt, "mask": mask, "thresh_map": thresh_map.astype(np.float32), "thresh_mask": thresh_mask}


def reference_score_regions(prob: np.ndarray, config: PostprocessConfig) -> tuple[list[np.ndarray], np.ndarray]:
    """Contours above ``thresh`` scored one by one: fill the contour, keep its own pixels, take the mean."""
    bitmap = (prob > config.thresh).astype(np.uint8)
    contours, _ = cv2.findContours(bitmap, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    scores = []
    for contour in contours:
        region = np.zeros_like(bitmap)
        cv2.drawContours(region, [contour], -1, 1, thickness=cv2.FILLED)
        scores.append(float(prob[(region & bitmap).astype(bool)].mean()))
    return list(contours), np.array(scores)


def round_trip_ious(records: Sequence[ImageRecord], size: int) -> np.ndarray:
    """GT -> letterbox -> targets -> kernel map as prediction -> postprocess (exact unclip) -> best IoU per GT box.

    Boxes the targets mark don't-care (thinner than ``min_text_size`` at ``size``) are left out.
    """
    exact = PostprocessConfig(unclip_ratio=None)
    ious = []
    for record in records:
        _, scale = letterbox(read_image(record.path), size)
        scaled = [w.points * scale for w in record.words]
        found, _ = postprocess(make_targets(scaled, size, size)["gt"], scale, (record.width, record.height), exact)
        shapes = [shapely.Polygon(p) for p in found]
        for word, polygon in zip(record.words, scaled):
            if min(cv2.minAreaRect(polygon.astype(np.float32))[1]) >= TargetConfig.min_text_size:
                gt = shapely.Polygon(word.points)
                ious.append(max((gt.intersection(s).area / gt.union(s).area for s in shapes), default=0.0))
    return np.array(ious)
