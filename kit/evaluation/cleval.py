"""CLEval (Baek et al., 2020), detection only, in the variant the competition baseline used.

Rules of the variant (``../shared/cleval/SPEC.md``; the golden cases there pin them), per
image (the leaderboard scores each image, then averages over the GT file's images):

* GT coordinates are rounded half-to-even to integers before anything else; detection
  coordinates are used as given. Each word's points are flattened to ``x1, y1, x2, ...``.
* Detections beyond the first ``max_detections`` (500) of the raw list are ignored; then
  polygons (GT or detection) with fewer than 8 numbers or an odd count are skipped, so
  invalid entries use up places under the cap. Skips are reported, never silent.
* Each box keeps its raw points and a copy truncated to int32 (toward zero). Areas,
  intersections and point-in-polygon tests use the truncated copy.
* Pseudo-character count: from the minimum-area rectangle of the convex hull of the
  float32 points (scipy's Qhull, first minimal hull edge), ``ar = min(100, ortho / (para
  + eps32))`` and ``n = min(round(0.5 + max(ar, 1 / (ar + eps32))), 100)`` (Python's
  round: halves go to even). A hull that cannot be built (collinear or repeated
  points) gives ``ar = 0``, so 100 characters.
* Pseudo-character centres lie on the midline between the first half of the points
  (top, left to right) and the second half reversed (bottom), interpolated as the
  reference does (intermediate points truncated to int).
* Area precision ``|G & D| / |D|`` (float32) >= 0.3; a detection covers a character
  when the centre is inside it (crossing-number test: left and top edges in, right and
  bottom out).
* Matching: one-to-one; one GT to several detections (split) when each has area
  precision >= 0.3 and covers one of its characters; several GT to one detection
  (merge) when it covers characters of each and the summed area precision >= 0.3.
  Only characters of matched pairs count; a character covered twice counts once.
* Granularity penalty 1.0 per extra piece of a split (recall) or merge (precision).
  Each unmatched detection adds ``min(round(0.5 + 1 / (eps32 + ar)), 100)`` false
  characters to the precision denominator.
* ``recall = max(0, tp - split penalty) / GT chars``, ``precision = max(0, tp -
  merge penalty) / (covered chars of matched pairs + false chars)``, 0 on an empty
  denominator, in float32 like the reference's torch metric; H-mean is their harmonic mean.

Geometry uses shapely, not Polygon3: for self-intersecting polygons, intersections are
taken on ``shapely.make_valid`` (even-odd, as Polygon3's clipper), areas by the shoelace
formula of the ring (as Polygon3's ``area()``).
"""

from __future__ import annotations

import gc
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import shapely
from scipy.spatial import ConvexHull, QhullError

from kit.errors import InputError
from kit.workers import pool_context

EPS32 = float(np.finfo(np.float32).eps)
MAX_CHARS = 100
#: The skip reason of detections past the cap (``image_counts`` tells them from invalid polygons by it).
OVER_CAP = "beyond the first"


@dataclass
class CLEvalConfig:
    """The competition's settings."""

    ap_constraint: float = 0.3
    recall_granularity_penalty: float = 1.0
    precision_granularity_penalty: float = 1.0
    max_detections: int = 500


# ----------------------------------------------------------------------------- boxes


def aspect_ratios(polygons: Sequence[np.ndarray], hull_order: bool = True) -> np.ndarray:
    """``min(100, orthogonal / (parallel + eps32))`` of each polygon's min-area hull rectangle; 0 if no hull.

    The hull comes from scipy's Qhull, as in the reference: which side counts as
    "parallel" is the first minimal edge in Qhull's vertex order. Only the false-character
    count depends on that order; the pseudo-character count is symmetric in the ratio, so
    with ``hull_order=False`` a strictly convex polygon serves as its own hull (no Qhull
    call). The rectangle search is vectorised over polygons with hulls of the same size.
    """
    ratios = np.zeros(len(polygons))
    by_size: dict[int, list[int]] = {}
    for i, p in enumerate(polygons):
        by_size.setdefault(len(p), []).append(i)
    groups: list[tuple[np.ndarray, np.ndarray]] = []  # (indices, (m, k, 2) hulls), float32 values as float64
    pending: list[tuple[int, np.ndarray]] = []
    for index in by_size.values():
        stack = np.asarray([polygons[i] for i in index], np.float32).astype(np.float64)
        if hull_order:
            pending += zip(index, stack)
            continue
        edges = np.roll(stack, -1, axis=1) - stack
        after = np.roll(edges, -1, axis=1)
        turn = edges[..., 0] * after[..., 1] - edges[..., 1] * after[..., 0]
        convex = (turn > 0).all(1) | (turn < 0).all(1)
        groups.append((np.asarray(index)[convex], stack[convex]))
        pending += [(index[j], stack[j]) for j in np.nonzero(~convex)[0]]
    hulls: dict[int, list[tuple[int, np.ndarray]]] = {}
    for i, points in pending:
        try:
            hull = points[ConvexHull(points).vertices]
        except (QhullError, ValueError):
            continue  # no hull: ratio 0
        hulls.setdefault(len(hull), []).append((i, hull))
    groups += [(np.array([i for i, _ in g]), np.stack([h for _, h in g])) for g in hulls.values()]
    for index, hull in groups:
        if not len(index):
            continue
        hull32 = hull.astype(np.float32)  # the edge vector is float32 in the reference, the rest float64
        edges = (np.roll(hull32, -1, axis=1) - hull32).astype(np.float64)
        unit = edges / np.linalg.norm(edges, axis=2, keepdims=True)
        ortho = np.stack([-unit[..., 1], unit[..., 0]], axis=2)
        along = np.einsum("mpc,mec->mpe", hull, unit)  # (m, points, edges)
        across = np.einsum("mpc,mec->mpe", hull, ortho)
        len_p = along.max(1) - along.min(1)
        len_o = across.max(1) - across.min(1)
        best = np.argmin(len_p * len_o, axis=1)  # the first minimum, as the reference's strict '<'
        rows = np.arange(len(index))
        ratios[index] = np.minimum(100.0, len_o[rows, best] / (len_p[rows, best] + EPS32))
    return ratios


def aspect_ratio(points: np.ndarray) -> float:
    """The aspect ratio of one polygon (see :func:`aspect_ratios`)."""
    return float(aspect_ratios([points])[0])


def pseudo_char_count(ar: float) -> int:
    """Characters a box stands for: ``min(round(0.5 + max(ar, 1 / (ar + eps32))), 100)``."""
    return min(round(0.5 + max(ar, 1.0 / (ar + EPS32))), MAX_CHARS)


def false_char_count(ar: float) -> int:
    """False characters an unmatched detection adds: ``min(round(0.5 + 1 / (eps32 + ar)), 100)``."""
    return min(round(0.5 + 1.0 / (EPS32 + ar)), MAX_CHARS)


def pseudo_char_centres(points: np.ndarray, count: int) -> np.ndarray:
    """(count, 2) centres on the midline between the top half and the reversed bottom half of the points."""
    half = len(points) // 2
    top, bottom = points[:half], points[half:][::-1]
    steps = np.arange(1, count)[:, None]
    new_top, new_bottom = [], []
    for s in range(half - 1):
        new_top += [top[s][None], np.trunc(top[s] + (top[s + 1] - top[s]) / count * steps)]
        new_bottom += [bottom[s][None], np.trunc(bottom[s] + (bottom[s + 1] - bottom[s]) / count * steps)]
    new_top = np.concatenate(new_top + [top[-1][None]])
    new_bottom = np.concatenate(new_bottom + [bottom[-1][None]])
    section = (len(new_top) - 1) / count
    start = np.array([int(c * section) for c in range(count)])
    end = np.array([int((c + 1) * section) for c in range(count)])
    return (new_top[start] + new_top[end] + new_bottom[start] + new_bottom[end]) / 4


def all_pseudo_char_centres(words: Sequence[np.ndarray], counts: Sequence[int]) -> np.ndarray:
    """(sum(counts), 2) centres of every word, in word order: :func:`pseudo_char_centres`, vectorised.

    Quadrilaterals (one top and one bottom section) are done together per character count;
    other vertex counts word by word.
    """
    out: list[np.ndarray | None] = [None] * len(words)
    quads: dict[int, list[int]] = {}
    for i, (points, count) in enumerate(zip(words, counts)):
        if len(points) == 4:
            quads.setdefault(count, []).append(i)
        else:
            out[i] = pseudo_char_centres(points, count)
    for count, index in quads.items():
        p = np.stack([words[i] for i in index])  # (m, 4, 2)
        steps = np.arange(1, count)[None, :, None]
        lines = []
        for a, b in ((p[:, 0], p[:, 1]), (p[:, 3], p[:, 2])):  # top: 0 -> 1; bottom: 3 -> 2
            inner = np.trunc(a[:, None] + (b - a)[:, None] / count * steps)
            lines.append(np.concatenate([a[:, None], inner, b[:, None]], axis=1))  # (m, count + 1, 2)
        top, bottom = lines
        centres = (top[:, :-1] + top[:, 1:] + bottom[:, :-1] + bottom[:, 1:]) / 4
        for j, i in enumerate(index):
            out[i] = centres[j]
    return np.concatenate(out) if out else np.zeros((0, 2))


def centres_inside(polygons: Sequence[np.ndarray], bounds: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(polygons, centres) even-odd test (:func:`kit.geometry.points_in_polygon`), every pair at once.

    Only pairs whose bounding boxes admit the centre are tested: each such pair is expanded
    to its polygon's edges, the crossings are summed per pair and their parity taken.
    """
    inside = np.zeros((len(polygons), len(centres)), bool)
    if not len(polygons) or not len(centres):
        return inside
    xs, ys = centres[:, 0], centres[:, 1]
    near = ((xs[None] >= bounds[:, 0, None]) & (xs[None] <= bounds[:, 2, None])
            & (ys[None] >= bounds[:, 1, None]) & (ys[None] <= bounds[:, 3, None]))
    d_idx, c_idx = np.nonzero(near)
    if not len(d_idx):
        return inside
    first, successor, starts = _rings(polygons)
    second = first[successor]
    per_pair = np.diff(np.append(starts, len(first)))[d_idx]  # each pair's polygon's vertex count
    pair_start = np.concatenate([[0], np.cumsum(per_pair)[:-1]])
    edge = np.arange(per_pair.sum()) - np.repeat(pair_start - starts[d_idx], per_pair)
    x1, y1, x2, y2 = first[edge, 0], first[edge, 1], second[edge, 0], second[edge, 1]
    px, py = np.repeat(xs[c_idx], per_pair), np.repeat(ys[c_idx], per_pair)
    crosses = (y1 > py) != (y2 > py)  # never true on a horizontal edge, so its division is never used
    with np.errstate(divide="ignore", invalid="ignore"):
        crosses &= px < (x2 - x1) * (py - y1) / (y2 - y1) + x1
    inside[d_idx, c_idx] = np.add.reduceat(crosses.astype(np.int64), pair_start) % 2 == 1
    return inside


def _rings(polygons: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All vertices stacked, each vertex's successor index in its ring, and each ring's first index."""
    sizes = np.array([len(p) for p in polygons])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat = np.concatenate(polygons)
    own_start, own_size = np.repeat(starts, sizes), np.repeat(sizes, sizes)
    return flat, own_start + (np.arange(len(flat)) - own_start + 1) % own_size, starts


@dataclass
class Boxes:
    """Polygons prepared for matching: raw and int32-truncated points, ring areas, bounding boxes."""

    points: list[np.ndarray]
    trunc: list[np.ndarray]
    areas: np.ndarray  # shoelace area of the truncated ring, as Polygon3's area() (exact: integer vertices)
    bounds: np.ndarray  # (n, 4) xmin, ymin, xmax, ymax of the truncated points

    @classmethod
    def prepare(cls, polygons: Sequence[np.ndarray]) -> Boxes:
        if not polygons:
            return cls([], [], np.zeros(0), np.zeros((0, 4)))
        points, (flat, successor, starts) = list(polygons), _rings(polygons)
        flat = flat.astype(np.int32).astype(np.float64)
        x, y = flat[:, 0], flat[:, 1]
        areas = np.abs(np.add.reduceat(x * y[successor] - x[successor] * y, starts)) / 2
        bounds = np.stack([np.minimum.reduceat(x, starts), np.minimum.reduceat(y, starts),
                           np.maximum.reduceat(x, starts), np.maximum.reduceat(y, starts)], axis=1)
        ends = np.append(starts[1:], len(flat))
        return cls(points, [flat[a:b] for a, b in zip(starts, ends)], areas, bounds)

    def geometries(self, index: np.ndarray) -> np.ndarray:
        """Shapely polygons of the truncated rings ``index``; self-intersecting ones through ``make_valid``
        (even-odd, as Polygon3's clipper)."""
        chosen = [self.trunc[i] for i in index]
        ids = np.repeat(np.arange(len(chosen)), [len(c) for c in chosen])
        rings = shapely.polygons(shapely.linearrings(np.concatenate(chosen), indices=ids))
        invalid = ~shapely.is_valid(rings)
        if invalid.any():
            rings[invalid] = shapely.make_valid(rings[invalid])
        return rings

    def __len__(self) -> int:
        return len(self.points)


def intersection_areas(gt: Boxes, det: Boxes, gi: np.ndarray, di: np.ndarray) -> np.ndarray:
    """``area(gt[gi] & det[di])`` per pair. Axis-aligned rectangle GT words (most receipt words)
    clip the detection by rectangle, which GEOS does several times faster than a general
    intersection; other pairs take the general one."""
    quad = np.array([len(t) == 4 for t in gt.trunc])
    rect = np.zeros(len(gt), bool)
    if quad.any():  # four vertices on the bounding box's corners, enclosing all of it
        corners, (x0, y0, x1, y1) = np.stack([t for t, q in zip(gt.trunc, quad) if q]), gt.bounds[quad].T
        on_corners = (((corners[..., 0] == x0[:, None]) | (corners[..., 0] == x1[:, None]))
                      & ((corners[..., 1] == y0[:, None]) | (corners[..., 1] == y1[:, None]))).all(1)
        rect[quad] = on_corners & (gt.areas[quad] == (x1 - x0) * (y1 - y0)) & (gt.areas[quad] > 0)
    areas = np.zeros(len(gi))
    dets, d_at = np.unique(di, return_inverse=True)
    det_geoms = det.geometries(dets)[d_at]
    by_rect = rect[gi]
    if by_rect.any():
        clipped = [shapely.clip_by_rect(g, *box) for g, box in zip(det_geoms[by_rect], gt.bounds[gi[by_rect]])]
        areas[by_rect] = shapely.area(np.array(clipped))
    if (~by_rect).any():
        gts, g_at = np.unique(gi[~by_rect], return_inverse=True)
        areas[~by_rect] = shapely.area(shapely.intersection(gt.geometries(gts)[g_at], det_geoms[~by_rect]))
    return areas


# ----------------------------------------------------------------------------- per image


@dataclass
class ImageResult:
    """One image's scores, counts and matching (indices into the GT and detection lists)."""

    precision: float
    recall: float
    hmean: float
    num_char_gt: int = 0
    num_char_det: int = 0
    num_char_tp: int = 0
    num_char_fp: int = 0
    gran_recall: float = 0.0
    gran_precision: float = 0.0
    num_splitted: int = 0
    num_merged: int = 0
    num_char_overlapped: int = 0
    matches: list[tuple[list[int], list[int]]] = field(default_factory=list)
    missed: list[int] = field(default_factory=list)
    false_positives: list[int] = field(default_factory=list)
    split: list[int] = field(default_factory=list)
    merged: list[int] = field(default_factory=list)
    gt_chars: list[int] = field(default_factory=list)
    gt_chars_found: list[int] = field(default_factory=list)
    skipped_gt: list[tuple[int, str]] = field(default_factory=list)  # (index, reason)
    skipped_det: list[tuple[int, str]] = field(default_factory=list)
    #: Per GT word (its input index), every detection holding one of its pseudo-character centres, as
    #: (detection index, area precision, the word's centres inside it, matched): why a word was matched or not.
    word_links: dict[int, list[tuple[int, float, int, bool]]] = field(default_factory=dict)

    def scores(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "hmean": self.hmean}


def _usable(polygons: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[int], list[tuple[int, str]]]:
    """Polygons with at least 4 points and an even coordinate count, their indices, and (index, reason) of the rest."""
    kept, index, skipped = [], [], []
    for i, p in enumerate(polygons):
        arr = np.asarray(p, np.float64)
        if arr.size % 2:
            skipped.append((i, f"odd coordinate count ({arr.size})"))
        elif arr.size < 8:
            skipped.append((i, f"fewer than 4 points ({arr.size // 2})"))
        elif not np.isfinite(arr).all():
            skipped.append((i, "non-finite coordinate"))
        else:
            kept.append(arr.reshape(-1, 2))
            index.append(i)
    return kept, index, skipped


def round_gt(polygon: np.ndarray) -> np.ndarray:
    """GT coordinates as the reference's loader gives them: rounded half-to-even to int32 (kept as float64)."""
    return np.round(np.asarray(polygon, np.float64)).astype(np.int32).astype(np.float64)


def float32_scores(tp: int, gran_recall: float, gran_precision: float, num_gt: int,
                   num_det: int) -> tuple[float, float, float]:
    """Recall, precision and H-mean computed in float32, as the reference's torch metric does."""
    f = np.float32
    recall = f(max(f(tp) - f(gran_recall), f(0))) / f(max(num_gt, 1)) if num_gt > 0 else f(0)
    precision = f(max(f(tp) - f(gran_precision), f(0))) / f(max(num_det, 1)) if num_det > 0 else f(0)
    total = f(recall + precision)
    hmean = f(f(f(2) * recall) * precision) / total if total > 0 else f(0)
    return float(precision), float(recall), float(hmean)


def evaluate_image(gt_polygons: Sequence[np.ndarray], det_polygons: Sequence[np.ndarray],
                   config: CLEvalConfig | None = None) -> ImageResult:
    """CLEval of one image. Indices in the result refer to the input lists.

    Polygons are (N, 2) arrays or flat coordinate lists; GT coordinates are rounded
    half-to-even first (the reference's loader), detections are used as given.
    """
    config = config or CLEvalConfig()
    gt_list, gt_index, skipped_gt = _usable([round_gt(p) for p in gt_polygons])
    det_list, det_index, skipped_det = _usable(list(det_polygons)[: config.max_detections])
    cap = f"{OVER_CAP} {config.max_detections} detections"
    skipped_det += [(i, cap) for i in range(config.max_detections, len(det_polygons))]
    gt, det = Boxes.prepare(gt_list), Boxes.prepare(det_list)
    n_gt, n_det = len(gt), len(det)

    counts = [pseudo_char_count(r) for r in aspect_ratios(gt.points, hull_order=False)]
    owner = np.repeat(np.arange(n_gt), counts)
    all_centres = all_pseudo_char_centres(gt.points, counts)

    inside = centres_inside(det.trunc, det.bounds, all_centres)  # (det, centre)
    pcc = np.zeros((n_gt, n_det), np.int64)
    if len(all_centres) and n_det:
        pcc = np.add.reduceat(inside.astype(np.int64), np.cumsum(counts) - counts, axis=1).T

    # area precision where it is ever read: the matching rules only look at pairs sharing a centre
    ap = np.zeros((n_gt, n_det), np.float32)
    gi, di = np.nonzero((pcc > 0) & (det.areas > 0)[None, :])
    if len(gi):
        ap[gi, di] = (intersection_areas(gt, det, gi, di) / det.areas[di]).astype(np.float32)

    match, matches = _match(ap, pcc, config.ap_constraint)
    result = _score(match, matches, inside, owner, counts, det.points, config, gt_index, det_index,
                    skipped_gt, skipped_det)
    result.word_links = word_links(ap, pcc, match, gt_index, det_index)
    return result


def word_links(ap: np.ndarray, pcc: np.ndarray, match: np.ndarray, gt_index: list[int],
               det_index: list[int]) -> dict[int, list[tuple[int, float, int, bool]]]:
    """:attr:`ImageResult.word_links` from the area precision, centre count and match matrices (usable-polygon
    positions mapped back to input indices)."""
    links: dict[int, list[tuple[int, float, int, bool]]] = {}
    for g, d in zip(*np.nonzero(pcc > 0)):
        links.setdefault(gt_index[g], []).append((det_index[d], float(ap[g, d]), int(pcc[g, d]), bool(match[g, d])))
    return links


def _match(ap: np.ndarray, pcc: np.ndarray, constraint: float) -> tuple[np.ndarray, list[tuple[list[int], list[int]]]]:
    """The match matrix (union of one-to-one, split and merge matches) and the list of matches."""
    strong = (ap >= np.float32(constraint)) & (pcc > 0)
    per_gt, per_det = strong.sum(1), strong.sum(0)
    one_to_one = strong & (per_gt == 1)[:, None] & (per_det == 1)[None, :]
    match = one_to_one | strong & (per_gt >= 2)[:, None]  # one-to-one and splits
    matches = [([int(g)], [int(d)]) for g, d in zip(*np.nonzero(one_to_one))]
    matches += [([int(g)], np.nonzero(strong[g])[0].tolist()) for g in np.nonzero(per_gt >= 2)[0]]
    touching = pcc > 0
    for d in np.nonzero(touching.sum(0) >= 2)[0]:  # merges: centres of several words, summed AP >= 0.3
        gts = np.nonzero(touching[:, d])[0]
        if ap[gts, d].astype(np.float64).sum() >= constraint:
            matches.append((gts.tolist(), [int(d)]))
            match[gts, d] = True
    return match, matches


def _score(match: np.ndarray, matches: list, inside: np.ndarray, owner: np.ndarray, counts: list[int],
           det_points: list[np.ndarray], config: CLEvalConfig, gt_index: list[int], det_index: list[int],
           skipped_gt: list[tuple[int, str]], skipped_det: list[tuple[int, str]]) -> ImageResult:
    """Character counts, penalties and scores from the match matrix."""
    n_gt, n_det = match.shape
    covered = inside & match[owner].T if len(owner) else inside  # (det, centre): only matched pairs count
    checked = covered.any(0)
    tp = int(checked.sum())
    pairs_chars = int(covered.sum())
    dets_per_gt, gts_per_det = match.sum(1), match.sum(0)
    gran_recall = float(np.maximum(dets_per_gt - 1, 0).sum()) * config.recall_granularity_penalty
    gran_precision = float(np.maximum(gts_per_det - 1, 0).sum()) * config.precision_granularity_penalty
    unmatched = np.nonzero(gts_per_det == 0)[0]
    fp_chars = sum(false_char_count(r) for r in aspect_ratios([det_points[d] for d in unmatched]))
    num_gt = int(sum(counts))
    num_det = pairs_chars + fp_chars
    precision, recall, hmean = float32_scores(tp, gran_recall, gran_precision, num_gt, num_det)
    found = np.bincount(owner[checked], minlength=n_gt) if len(owner) else np.zeros(n_gt, int)
    return ImageResult(
        precision, recall, hmean, num_gt, num_det, tp, fp_chars, gran_recall, gran_precision,
        num_splitted=int((dets_per_gt > 1).sum()), num_merged=int((gts_per_det > 1).sum()),
        num_char_overlapped=pairs_chars - tp,
        matches=[([gt_index[g] for g in gs], [det_index[d] for d in ds]) for gs, ds in matches],
        missed=[gt_index[g] for g in np.nonzero(dets_per_gt == 0)[0]],
        false_positives=[det_index[d] for d in unmatched],
        split=[gt_index[g] for g in np.nonzero(dets_per_gt > 1)[0]],
        merged=[det_index[d] for d in np.nonzero(gts_per_det > 1)[0]],
        gt_chars=list(counts), gt_chars_found=found.tolist(), skipped_gt=skipped_gt, skipped_det=skipped_det,
    )


# ----------------------------------------------------------------------------- datasets


@dataclass
class DatasetResult:
    """Dataset scores (``aggregation``: ``"mean"`` of per-image scores, or ``"pooled"`` character counts).

    ``missing_pred_images``: GT images without predictions (each scored 0, as the leaderboard
    does); ``ignored_pred_images``: predicted images not in the GT (ignored, as the leaderboard does).
    """

    precision: float
    recall: float
    hmean: float
    aggregation: str
    per_image: dict[str, ImageResult]
    missing_pred_images: list[str] = field(default_factory=list)
    ignored_pred_images: list[str] = field(default_factory=list)
    problems: dict[str, Any] = field(default_factory=dict)  # from files: see input_problems

    def scores(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "hmean": self.hmean}


def aggregate(per_image: Mapping[str, ImageResult], aggregation: str = "mean") -> DatasetResult:
    """Mean over images of per-image P/R/H (the leaderboard's), or P/R/H of the pooled character counts."""
    results = list(per_image.values())
    if aggregation == "mean":
        values = [(r.precision, r.recall, r.hmean) for r in results] or [(0.0, 0.0, 0.0)]
        p, r, h = (float(np.mean(v)) for v in zip(*values))
    elif aggregation == "pooled":
        p, r, h = float32_scores(sum(x.num_char_tp for x in results), sum(x.gran_recall for x in results),
                                 sum(x.gran_precision for x in results), sum(x.num_char_gt for x in results),
                                 sum(x.num_char_det for x in results))
    else:
        raise InputError(f"aggregation must be 'mean' or 'pooled', got {aggregation!r}")
    return DatasetResult(p, r, h, aggregation, dict(per_image))


def _evaluate_item(args: tuple[str, list[np.ndarray], list[np.ndarray], CLEvalConfig]) -> tuple[str, ImageResult]:
    name, gt, det, config = args
    return name, evaluate_image(gt, det, config)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while images are scored.

    The metric makes no reference cycles (reference counting frees everything), but the
    per-image results it keeps trigger full collections that scan the whole process heap:
    with scipy and shapely loaded one such pass cost 0.2 s per 100 pages, a fifth of the time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def evaluate(gt: Mapping[str, Sequence[np.ndarray]], pred: Mapping[str, Sequence[np.ndarray]],
             config: CLEvalConfig | None = None, aggregation: str = "mean", workers: int = 1) -> DatasetResult:
    """CLEval over a dataset: ``{image: [polygon, ...]}`` for GT and predictions.

    As the leaderboard: every GT image is one term of the mean, one missing from ``pred``
    has no detections (it scores 0), and predicted images not in the GT are ignored; both
    are listed in the result. ``workers > 1`` spreads images over processes.
    """
    config = config or CLEvalConfig()
    jobs = [(name, list(polys), list(pred.get(name, [])), config) for name, polys in gt.items()]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers, mp_context=pool_context()) as pool:
            per_image = dict(pool.map(_evaluate_item, jobs, chunksize=max(1, len(jobs) // (4 * workers))))
    else:
        with _cyclic_gc_paused():
            per_image = dict(map(_evaluate_item, jobs))
    result = aggregate(per_image, aggregation)
    result.missing_pred_images = [name for name in gt if name not in pred]
    result.ignored_pred_images = [name for name in pred if name not in gt]
    return result


class CLEvalAccumulator:
    """Incremental evaluation for a training loop: ``update`` per image, ``compute`` at the end."""

    def __init__(self, config: CLEvalConfig | None = None, aggregation: str = "mean"):
        self.config = config or CLEvalConfig()
        self.aggregation = aggregation
        self.per_image: dict[str, ImageResult] = {}

    def update(self, name: str, gt_polygons: Sequence[np.ndarray], det_polygons: Sequence[np.ndarray]) -> ImageResult:
        result = evaluate_image(gt_polygons, det_polygons, self.config)
        self.per_image[name] = result
        return result

    def merge(self, other: CLEvalAccumulator) -> None:
        """Add another accumulator's images (e.g. from another process or rank)."""
        self.per_image.update(other.per_image)

    def compute(self) -> DatasetResult:
        return aggregate(self.per_image, self.aggregation)

    def reset(self) -> None:
        self.per_image = {}
