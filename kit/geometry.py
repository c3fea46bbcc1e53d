"""Polygon geometry shared by the training targets, the postprocess and the metric.

Coordinates are continuous pixels: pixel (row i, col j) covers [j, j+1] x [i, i+1]. DBNet
shrinks a polygon of area A and perimeter L by D = A (1 - r^2) / L (r = ``SHRINK_RATIO``)
to make its kernel, and the postprocess grows a detected kernel back; both offsets are
Vatti clipping with rounded joins (pyclipper), on integers scaled by ``CLIPPER_SCALE``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pyclipper
import shapely

#: DBNet's shrink ratio r (the paper's and the competition baseline's): the one default for targets and postprocess.
SHRINK_RATIO = 0.4
#: pyclipper works on integers: coordinates are scaled by this before offsetting.
CLIPPER_SCALE = 256


def offset_distance(polygon: np.ndarray, shrink_ratio: float) -> float:
    """DBNet's offset D = A (1 - r^2) / L; 0 for a polygon without area."""
    area = abs(cv2.contourArea(polygon.astype(np.float32)))
    length = cv2.arcLength(polygon.astype(np.float32), True)
    return float(area * (1 - shrink_ratio**2) / length) if length > 0 else 0.0


def inverse_shrink_distance(area: float, length: float, shrink_ratio: float) -> float:
    """Offset that undoes DBNet's shrink D = A (1 - r^2) / L of a convex quadrilateral.

    A shrunk quad of area a and perimeter l was its original minus a band of width D:
    A = a + l D + 4 D^2 and L = l + 8 D. Substituting into D L = c A (c = 1 - r^2) gives
    (8 - 4c) D^2 + (1 - c) l D - c a = 0, whose positive root this returns.
    """
    c = 1.0 - shrink_ratio**2
    qa, qb, qc = 8.0 - 4.0 * c, (1.0 - c) * length, -c * area
    return (-qb + math.sqrt(qb * qb - 4 * qa * qc)) / (2 * qa)


def offset_polygon(polygon: np.ndarray, distance: float) -> list[np.ndarray]:
    """``polygon`` grown (distance > 0) or shrunk (< 0) with rounded joins; may split or vanish."""
    offsetter = pyclipper.PyclipperOffset()
    offsetter.AddPath(np.round(polygon * CLIPPER_SCALE).astype(np.int64).tolist(), pyclipper.JT_ROUND,
                      pyclipper.ET_CLOSEDPOLYGON)
    return [np.asarray(p, np.float64) / CLIPPER_SCALE for p in offsetter.Execute(distance * CLIPPER_SCALE)]


def points_in_polygon(polygon: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Even-odd (crossing number) test of points against ``polygon``, vectorised over the points.

    A point on a left or top edge is inside, on a right or bottom edge outside (W. R.
    Franklin's pnpoly, which Polygon3 and so the CLEval reference use).

    Exact where ``cv2.fillPoly`` is not: fillPoly also fills every pixel an edge passes
    through, which grows a region by about half a pixel and biases the kernel (a one
    pixel error in a thin kernel is a six pixel error after unclipping).
    """
    inside = np.zeros(xs.shape, bool)
    for (x1, y1), (x2, y2) in zip(polygon, np.roll(polygon, -1, axis=0)):
        if y1 == y2:
            continue
        crosses = (y1 > ys) != (y2 > ys)
        inside ^= crosses & (xs < (x2 - x1) * (ys - y1) / (y2 - y1) + x1)
    return inside


def segment_distances(xs: np.ndarray, ys: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Distance from each point (xs, ys) to the nearest edge of the closed ``polygon``."""
    a = polygon
    b = np.roll(polygon, -1, axis=0)
    ab = b - a
    length2 = np.maximum((ab**2).sum(1), 1e-12)
    px = xs[..., None] - a[:, 0]
    py = ys[..., None] - a[:, 1]
    t = np.clip((px * ab[:, 0] + py * ab[:, 1]) / length2, 0.0, 1.0)
    dx = px - t * ab[:, 0]
    dy = py - t * ab[:, 1]
    return np.sqrt(dx * dx + dy * dy).min(-1)


def orient_clockwise(polygon: np.ndarray) -> np.ndarray:
    """Vertices in the GT's winding (TL -> TR -> BR -> BL: clockwise on screen, y down)."""
    x, y = polygon[:, 0], polygon[:, 1]
    signed = float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    return polygon if signed >= 0 else polygon[::-1]


def clean_polygon(polygon: np.ndarray, max_vertices: int, tolerance: float = 0.5) -> np.ndarray | None:
    """``polygon`` without repeated or collinear vertices and with at most ``max_vertices``, or None without area.

    DBNet's unclip (rounded joins) leaves hundreds of vertices a fraction of a pixel apart, and
    clipping to the image repeats them. Douglas-Peucker (shapely, topology preserved) with
    ``tolerance`` px removes those (every vertex moves at most ``tolerance``, the size of the
    submission's integer rounding); the tolerance doubles until the budget holds. A result
    under 4 vertices, which the metric would skip, becomes its minimum-area rectangle.
    """
    ring = shapely.Polygon(polygon)
    if not ring.is_valid:
        ring = shapely.make_valid(ring)
        ring = max(getattr(ring, "geoms", [ring]), key=lambda g: g.area)
    if ring.geom_type != "Polygon" or ring.area <= 0:
        return None
    simple = ring.simplify(0.0)
    while len(simple.exterior.coords) - 1 > max_vertices:
        simple = ring.simplify(tolerance, preserve_topology=True)
        tolerance *= 2
    points = np.asarray(simple.exterior.coords[:-1], np.float64)
    if len(points) < 4:
        points = cv2.boxPoints(cv2.minAreaRect(points.astype(np.float32))).astype(np.float64)
    return points
