"""Straightforward reference versions that the fast kit code is proven against (tests) and timed against (bench).

They live with the tests, which prove the kit against them; the benchmarks import them from here.

They follow the same rules with independent, simple means: shapely geometry and a loop
over pixels for the targets; one filled mask per candidate for the postprocess scores.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import shapely

from kit.data.annotations import ImageRecord, read_image
from kit.data.dataset import letterbox
from kit.data.targets import TargetConfig, make_targets
from kit.evaluation.cleval import (
    CLEvalConfig,
    ImageResult,
    aspect_ratio,
    false_char_count,
    float32_scores,
    pseudo_char_centres,
    pseudo_char_count,
)
from kit.model.postprocess import PostprocessConfig, postprocess


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


def reference_cleval_image(gt_polygons: Sequence[np.ndarray], det_polygons: Sequence[np.ndarray],
                           config: CLEvalConfig | None = None) -> ImageResult:
    """CLEval of one image pair by pair, point by point, as the competition's reference loops."""
    config = config or CLEvalConfig()
    gts = [np.round(np.asarray(p, float)).reshape(-1, 2) for p in gt_polygons if np.asarray(p).size >= 8]  # half-even
    dets = [np.asarray(p, float).reshape(-1, 2) for p in list(det_polygons)[: config.max_detections]
            if np.asarray(p).size >= 8]

    def truncated(points: np.ndarray) -> shapely.Polygon:
        return shapely.Polygon(points.astype(np.int32))

    def inside(polygon: np.ndarray, x: float, y: float) -> bool:
        poly = polygon.astype(np.int32).astype(float)
        c = False
        j = len(poly) - 1
        for i in range(len(poly)):
            (xi, yi), (xj, yj) = poly[i], poly[j]
            if ((yi <= y < yj) or (yj <= y < yi)) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
                c = not c
            j = i
        return c

    counts = [pseudo_char_count(aspect_ratio(g)) for g in gts]
    centres = [pseudo_char_centres(g, c) for g, c in zip(gts, counts)]
    ap = np.zeros((len(gts), len(dets)), np.float32)
    pcc = np.zeros((len(gts), len(dets)), int)
    pcc_list = [np.zeros((len(dets), c), bool) for c in counts]
    for g, gt in enumerate(gts):
        gt_poly = shapely.make_valid(truncated(gt))
        for d, det in enumerate(dets):
            det_poly = truncated(det)
            det_area = 0.5 * abs(sum(float(a[0]) * float(b[1]) - float(b[0]) * float(a[1])
                                     for a, b in zip(det.astype(np.int32), np.roll(det.astype(np.int32), -1, 0))))
            if det_area > 0:
                ap[g, d] = np.float32(gt_poly.intersection(shapely.make_valid(det_poly)).area / det_area)
            for k, (x, y) in enumerate(centres[g]):
                if inside(det, x, y):
                    pcc_list[g][d, k] = True
                    pcc[g, d] += 1

    strong = (ap >= np.float32(config.ap_constraint)) & (pcc > 0)
    match = np.zeros((len(gts), len(dets)), bool)
    for g in range(len(gts)):
        for d in range(len(dets)):
            if strong[g, d] and strong[g].sum() == 1 and strong[:, d].sum() == 1:
                match[g, d] = True
    for g in range(len(gts)):
        ds = [d for d in range(len(dets)) if strong[g, d]]
        if len(ds) >= 2:
            match[g, ds] = True
    for d in range(len(dets)):
        gs = [g for g in range(len(gts)) if pcc[g, d] > 0]
        if len(gs) >= 2 and sum(float(ap[g, d]) for g in gs) >= config.ap_constraint:
            match[gs, d] = True
    for g in range(len(gts)):
        for d in range(len(dets)):
            if not match[g, d]:
                pcc[g, d] = 0
                pcc_list[g][d, :] = False

    checked = [np.zeros(c, bool) for c in counts]
    tp = overlapped = merged = splitted = 0
    gran_precision = gran_recall = 0.0
    for d in range(len(dets)):
        gs = [g for g in range(len(gts)) if match[g, d]]
        if gs:
            merged += len(gs) > 1
            for g in gs:
                for k in np.nonzero(pcc_list[g][d])[0]:
                    if checked[g][k]:
                        overlapped += 1
                    else:
                        checked[g][k] = True
                        tp += 1
            gran_precision += max(len(gs) - 1, 0) * config.precision_granularity_penalty
    for g in range(len(gts)):
        ds = [d for d in range(len(dets)) if match[g, d]]
        if ds:
            splitted += len(ds) > 1
            gran_recall += max(len(ds) - 1, 0) * config.recall_granularity_penalty
    fp = sum(false_char_count(aspect_ratio(dets[d])) for d in range(len(dets)) if not match[:, d].any())
    num_gt, num_det = sum(counts), int(pcc.sum()) + fp
    precision, recall, hmean = float32_scores(tp, gran_recall, gran_precision, num_gt, num_det)
    return ImageResult(precision, recall, hmean, num_gt, num_det, tp, fp, gran_recall, gran_precision,
                       splitted, merged, overlapped)


def make_workload(n_images: int, words_per_image: int, seed: int) -> tuple[dict, dict]:
    """Receipt-like GT pages and predictions with jitter, splits, merges, misses and false positives."""
    rng = np.random.default_rng(seed)
    gt: dict[str, list[np.ndarray]] = {}
    pred: dict[str, list[np.ndarray]] = {}
    for i in range(n_images):
        boxes, y = [], 20.0
        while len(boxes) < words_per_image:
            x, h = 20.0, rng.uniform(14, 30)
            for _ in range(int(rng.integers(1, 6))):
                w = rng.uniform(20, 160)
                boxes.append(np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]]))
                x += w + rng.uniform(8, 30)
            y += h + rng.uniform(4, 12)
        boxes = boxes[:words_per_image]
        dets: list[np.ndarray] = []
        k = 0
        while k < len(boxes):
            box, roll = boxes[k], rng.random()
            if roll < 0.05:  # missed
                pass
            elif roll < 0.10:  # split in two
                mid = (box[0, 0] + box[1, 0]) / 2
                dets += [np.array([box[0], [mid, box[1, 1]], [mid, box[2, 1]], box[3]]),
                         np.array([[mid, box[0, 1]], box[1], box[2], [mid, box[3, 1]]])]
            elif roll < 0.15 and k + 1 < len(boxes) and abs(boxes[k + 1][0, 1] - box[0, 1]) < 1:  # merged
                nxt = boxes[k + 1]
                dets.append(np.array([box[0], nxt[1], nxt[2], box[3]]))
                k += 1
            else:
                dets.append(box + rng.normal(0, 1.5, box.shape))
            k += 1
        for _ in range(int(rng.integers(0, 6))):  # false positives
            x, y = rng.uniform(0, 900, 2)
            dets.append(np.array([[x, y], [x + 40, y], [x + 40, y + 15], [x, y + 15]]))
        order = rng.permutation(len(dets))
        gt[f"img_{i:04d}.jpg"] = boxes
        pred[f"img_{i:04d}.jpg"] = [dets[j] for j in order]
    return gt, pred


def reference_bootstrap(delta: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """Bootstrap means of per-image differences (n, k), one resample at a time (what ``paired_bootstrap``
    vectorises); the same draws as the kit's for one seed, so the same numbers."""
    rng = np.random.default_rng(seed)
    return np.array([delta[rng.integers(0, len(delta), len(delta))].mean(axis=0) for _ in range(n_resamples)])


def reference_splits(values: np.ndarray, n_splits: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Public and private means over random halves, one permutation at a time."""
    rng = np.random.default_rng(seed)
    half = int(round(len(values) / 2))
    public, private = np.empty(n_splits), np.empty(n_splits)
    for i in range(n_splits):
        order = rng.permutation(len(values))
        public[i], private[i] = values[order[:half]].mean(), values[order[half:]].mean()
    return public, private
