"""CLEval (Baek et al., 2020), detection only, in the variant the competition baseline used.

Rules of the variant, per image (the leaderboard scores each image, then averages):

* Detections beyond the first ``max_detections`` (500) are ignored; then polygons with
  fewer than 4 points (GT or detection) are skipped and counted.
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

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import shapely
from scipy.spatial import ConvexHull, QhullError

from kit.targets import points_in_polygon

EPS32 = float(np.finfo(np.float32).eps)
MAX_CHARS = 100


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
    points = [np.asarray(p, np.float32).astype(np.float64) for p in polygons]
    ratios = np.zeros(len(points))
    if not points:
        return ratios
    hulls: dict[int, list[tuple[int, np.ndarray]]] = {}
    pending = list(range(len(points)))
    if not hull_order:
        pending = []
        by_size: dict[int, list[int]] = {}
        for i, p in enumerate(points):
            by_size.setdefault(len(p), []).append(i)
        for size, index in by_size.items():
            stack = np.stack([points[i] for i in index])
            edges = np.roll(stack, -1, axis=1) - stack
            turn = edges[..., 0] * np.roll(edges, -1, axis=1)[..., 1] - edges[..., 1] * np.roll(edges, -1, axis=1)[..., 0]
            convex = (turn > 0).all(1) | (turn < 0).all(1)
            for j, i in enumerate(index):
                if convex[j]:
                    hulls.setdefault(size, []).append((i, stack[j]))
                else:
                    pending.append(i)
    for i in pending:
        try:
            hull = points[i][ConvexHull(points[i]).vertices]
        except (QhullError, ValueError):
            continue  # no hull: ratio 0
        hulls.setdefault(len(hull), []).append((i, hull))
    for group in hulls.values():
        index = np.array([i for i, _ in group])
        hull = np.stack([h for _, h in group])  # (m, k, 2)
        edges = np.roll(hull, -1, axis=1) - hull
        unit = edges / np.linalg.norm(edges, axis=2, keepdims=True)
        ortho = np.stack([-unit[..., 1], unit[..., 0]], axis=2)
        along = np.einsum("mpc,mec->mpe", hull, unit)  # (m, points, edges)
        across = np.einsum("mpc,mec->mpe", hull, ortho)
        len_p = along.max(1) - along.min(1)
        len_o = across.max(1) - across.min(1)
        best = np.argmin(len_p * len_o, axis=1)  # the first minimum, as the reference's strict '<'
        rows = np.arange(len(group))
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


@dataclass
class Boxes:
    """Polygons prepared for matching: truncated geometry, areas, bounding boxes, character counts."""

    points: list[np.ndarray]
    trunc: list[np.ndarray]
    geoms: np.ndarray
    areas: np.ndarray
    bounds: np.ndarray  # (n, 4) xmin, ymin, xmax, ymax of the truncated points

    @classmethod
    def prepare(cls, polygons: Sequence[np.ndarray]) -> Boxes:
        points = [np.asarray(p, np.float64).reshape(-1, 2) for p in polygons]
        if not points:
            empty = np.zeros(0)
            return cls([], [], np.zeros(0, object), empty, np.zeros((0, 4)))
        sizes = [len(p) for p in points]
        flat = np.concatenate(points).astype(np.int32).astype(np.float64)
        rings = shapely.polygons(shapely.linearrings(flat, indices=np.repeat(np.arange(len(points)), sizes)))
        geoms = rings.copy()
        invalid = ~shapely.is_valid(rings)
        if invalid.any():
            geoms[invalid] = shapely.make_valid(rings[invalid])
        # the ring's own (shoelace) area, as Polygon3's area(), even for self-intersecting rings
        return cls(points, np.split(flat, np.cumsum(sizes)[:-1]), geoms, shapely.area(rings), shapely.bounds(rings))

    def __len__(self) -> int:
        return len(self.points)


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
    skipped_gt: list[int] = field(default_factory=list)
    skipped_det: list[int] = field(default_factory=list)

    def scores(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "hmean": self.hmean}


def _usable(polygons: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[int], list[int]]:
    """Polygons with >= 4 points, their original indices, and the indices skipped."""
    kept, index, skipped = [], [], []
    for i, p in enumerate(polygons):
        arr = np.asarray(p, np.float64)
        if arr.size % 2 or arr.size < 8 or not np.isfinite(arr).all():
            skipped.append(i)
        else:
            kept.append(arr.reshape(-1, 2))
            index.append(i)
    return kept, index, skipped


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
    """CLEval of one image. Indices in the result refer to the input lists."""
    config = config or CLEvalConfig()
    gt_list, gt_index, skipped_gt = _usable(gt_polygons)
    det_list, det_index, skipped_det = _usable(list(det_polygons)[: config.max_detections])
    skipped_det += list(range(config.max_detections, len(det_polygons)))
    gt, det = Boxes.prepare(gt_list), Boxes.prepare(det_list)
    n_gt, n_det = len(gt), len(det)

    counts = [pseudo_char_count(r) for r in aspect_ratios(gt.points, hull_order=False)]
    centres = [pseudo_char_centres(p, c) for p, c in zip(gt.points, counts)]
    owner = np.repeat(np.arange(n_gt), counts)
    all_centres = np.concatenate(centres) if centres else np.zeros((0, 2))

    # area precision on candidate pairs only (bounding boxes overlap)
    ap = np.zeros((n_gt, n_det), np.float32)
    if n_gt and n_det:
        gb, db = gt.bounds, det.bounds
        overlap = ((gb[:, None, 0] < db[None, :, 2]) & (db[None, :, 0] < gb[:, None, 2])
                   & (gb[:, None, 1] < db[None, :, 3]) & (db[None, :, 1] < gb[:, None, 3]))
        gi, di = np.nonzero(overlap & (det.areas > 0)[None, :])
        if len(gi):
            inter = shapely.area(shapely.intersection(gt.geoms[gi], det.geoms[di]))
            ap[gi, di] = (inter / det.areas[di]).astype(np.float32)

    # character centres inside each detection (bounding-box prefilter, then crossing number)
    inside = np.zeros((n_det, len(all_centres)), bool)
    for d in range(n_det):
        x0, y0, x1, y1 = det.bounds[d]
        near = np.nonzero((all_centres[:, 0] >= x0) & (all_centres[:, 0] <= x1)
                          & (all_centres[:, 1] >= y0) & (all_centres[:, 1] <= y1))[0]
        if len(near):
            inside[d, near] = points_in_polygon(det.trunc[d], all_centres[near, 0], all_centres[near, 1])
    pcc = np.zeros((n_gt, n_det), np.int64)
    if len(all_centres) and n_det:
        np.add.at(pcc, owner, inside.T.astype(np.int64))

    match, matches = _match(ap, pcc, config.ap_constraint)
    return _score(match, matches, inside, owner, counts, det.points, config, gt_index, det_index,
                  skipped_gt, skipped_det)


def _match(ap: np.ndarray, pcc: np.ndarray, constraint: float) -> tuple[np.ndarray, list[tuple[list[int], list[int]]]]:
    """The match matrix (union of one-to-one, split and merge matches) and the list of matches."""
    strong = (ap >= np.float32(constraint)) & (pcc > 0)
    per_gt, per_det = strong.sum(1), strong.sum(0)
    matches: list[tuple[list[int], list[int]]] = []
    for g, d in zip(*np.nonzero(strong & (per_gt == 1)[:, None] & (per_det == 1)[None, :])):
        matches.append(([int(g)], [int(d)]))
    for g in np.nonzero(per_gt >= 2)[0]:
        matches.append(([int(g)], np.nonzero(strong[g])[0].tolist()))
    touching = pcc > 0
    for d in np.nonzero(touching.sum(0) >= 2)[0]:
        gts = np.nonzero(touching[:, d])[0]
        if ap[gts, d].astype(np.float64).sum() >= constraint:
            matches.append((gts.tolist(), [int(d)]))
    match = np.zeros_like(strong)
    for gts, dets in matches:
        match[np.ix_(gts, dets)] = True
    return match, matches


def _score(match: np.ndarray, matches: list, inside: np.ndarray, owner: np.ndarray, counts: list[int],
           det_points: list[np.ndarray], config: CLEvalConfig, gt_index: list[int], det_index: list[int],
           skipped_gt: list[int], skipped_det: list[int]) -> ImageResult:
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
    """Dataset scores (``aggregation``: ``"mean"`` of per-image scores, or ``"pooled"`` character counts)."""

    precision: float
    recall: float
    hmean: float
    aggregation: str
    per_image: dict[str, ImageResult]

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
        raise ValueError(f"aggregation must be 'mean' or 'pooled', got {aggregation!r}")
    return DatasetResult(p, r, h, aggregation, dict(per_image))


def _evaluate_item(args: tuple[str, list[np.ndarray], list[np.ndarray], CLEvalConfig]) -> tuple[str, ImageResult]:
    name, gt, det, config = args
    return name, evaluate_image(gt, det, config)


def evaluate(gt: Mapping[str, Sequence[np.ndarray]], pred: Mapping[str, Sequence[np.ndarray]],
             config: CLEvalConfig | None = None, aggregation: str = "mean", workers: int = 1) -> DatasetResult:
    """CLEval over a dataset: ``{image: [polygon, ...]}`` for GT and predictions.

    An image in GT but not in ``pred`` has no detections (it scores 0); an image in
    ``pred`` but not in GT is an error. ``workers > 1`` spreads images over processes.
    """
    config = config or CLEvalConfig()
    unknown = sorted(set(pred) - set(gt))
    if unknown:
        raise ValueError(f"{len(unknown)} predicted images are not in the GT, e.g. {unknown[0]!r}")
    jobs = [(name, list(polys), list(pred.get(name, [])), config) for name, polys in gt.items()]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            per_image = dict(pool.map(_evaluate_item, jobs, chunksize=max(1, len(jobs) // (4 * workers))))
    else:
        per_image = dict(map(_evaluate_item, jobs))
    return aggregate(per_image, aggregation)


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


# ----------------------------------------------------------------------------- files and command line


def polygons_by_image(json_path: Path | str) -> dict[str, list[np.ndarray]]:
    """``{image: [polygon, ...]}`` from a competition JSON, validated by the data layer."""
    from kit.data import read_annotations

    records, _ = read_annotations(json_path)
    return {r.name: r.polygons() for r in records}


def evaluate_files(gt_json: Path | str, pred_json: Path | str, config: CLEvalConfig | None = None,
                   aggregation: str = "mean", workers: int = 1) -> DatasetResult:
    """CLEval of a predictions JSON against a GT JSON, both in the competition schema."""
    gt, pred = polygons_by_image(gt_json), polygons_by_image(pred_json)
    unknown = sorted(set(pred) - set(gt))
    if unknown:
        raise ValueError(f"{pred_json}: {len(unknown)} images are not in {gt_json}, e.g. {unknown[0]!r}")
    return evaluate(gt, pred, config, aggregation, workers)


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kit.metric", description="CLEval of a predictions JSON.")
    parser.add_argument("gt", type=Path)
    parser.add_argument("pred", type=Path)
    parser.add_argument("--per-image", action="store_true", help="add per-image scores")
    parser.add_argument("--pooled", action="store_true", help="pool character counts instead of averaging images")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(list(argv) if argv is not None else None)
    result = evaluate_files(args.gt, args.pred, aggregation="pooled" if args.pooled else "mean", workers=args.workers)
    out: dict = result.scores()
    if args.per_image:
        out["per_image"] = {name: r.scores() for name, r in result.per_image.items()}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
