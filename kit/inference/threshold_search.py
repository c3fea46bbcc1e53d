"""Grid search of the postprocess thresholds on validation: maps cached once, CLEval per setting.

For one ``thresh`` and ``unclip_ratio`` the regions, their scores and polygons do not
depend on ``box_thresh``: polygons come sorted by score, so each ``box_thresh`` keeps a
prefix of one list. Each (thresh, unclip) pair is postprocessed once per image and every
``box_thresh`` is only a CLEval; images are spread over processes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from kit.data.annotations import ImageRecord, read_image
from kit.evaluation.cleval import CLEvalConfig, ImageResult, aggregate, evaluate_image
from kit.inference.predict import Predictor
from kit.model.postprocess import PostprocessConfig, polygons_from_regions, postprocess, score_regions
from kit.workers import pool_context


@dataclass
class CachedMap:
    """One validation image: its averaged map (float16, common frame), scale, original (width, height), GT polygons."""

    name: str
    prob: np.ndarray
    scale: tuple[float, float]
    image_size: tuple[int, int]
    gt: list[np.ndarray]


def cache_maps(predictor: Predictor, records: Sequence[ImageRecord], progress: bool = True) -> list[CachedMap]:
    """Predict every record once (with the predictor's ensemble and TTA) and keep the maps."""
    cached = []
    for record in tqdm(records, desc="cache maps", disable=not progress):
        prob, scale = predictor.prob_map(read_image(record.path))
        cached.append(CachedMap(record.name, prob.astype(np.float16), scale, (record.width, record.height),
                                record.polygons()))
    return cached


_JOBS: dict[str, object] = {}


def _set_jobs(jobs: dict[str, object]) -> None:
    """A worker's start: the cached maps and the grid, sent once per worker rather than once per image."""
    _JOBS.update(jobs)


def _search_image(index: int) -> list[tuple[tuple[float, float, float], object]]:
    """Every grid setting on one cached image (in this process or a pool worker holding the same ``_JOBS``)."""
    item: CachedMap = _JOBS["maps"][index]
    base: PostprocessConfig = _JOBS["base"]
    out = []
    prob = item.prob.astype(np.float32)
    for thresh, unclip in itertools.product(_JOBS["thresholds"], _JOBS["unclips"]):
        config = replace(base, thresh=thresh, unclip_ratio=unclip, box_thresh=min(_JOBS["box_thresholds"]))
        polygons, scores = polygons_from_regions(*score_regions(prob, config), item.scale, item.image_size, config)
        scores = np.asarray(scores)
        for box_thresh in _JOBS["box_thresholds"]:
            kept = polygons[: int((scores >= box_thresh).sum())]
            out.append(((thresh, box_thresh, unclip), evaluate_image(item.gt, kept, _JOBS["metric"])))
    return out


def threshold_search(maps: Sequence[CachedMap], thresholds: Sequence[float], box_thresholds: Sequence[float],
                     unclip_ratios: Sequence[float | None] = (2.0,), base: PostprocessConfig | None = None,
                     workers: int = 1, progress: bool = True) -> pd.DataFrame:
    """CLEval (mean over images) for every setting, best H-mean first."""
    jobs = {"maps": list(maps), "base": base or PostprocessConfig(), "thresholds": list(thresholds),
            "box_thresholds": sorted(box_thresholds), "unclips": list(unclip_ratios), "metric": CLEvalConfig()}
    _set_jobs(jobs)
    per_setting: dict[tuple, dict[str, object]] = {}
    indices = range(len(maps))
    try:
        if workers > 1:
            with pool_context([__name__]).Pool(workers, initializer=_set_jobs, initargs=(jobs,)) as pool:
                results = list(tqdm(pool.imap(_search_image, indices), total=len(maps), desc="search",
                                    disable=not progress))
        else:
            results = [_search_image(i) for i in tqdm(indices, desc="search", disable=not progress)]
    finally:
        _JOBS.clear()
    for item, image_results in zip(maps, results):
        for setting, result in image_results:
            per_setting.setdefault(setting, {})[item.name] = result
    rows = []
    for (thresh, box_thresh, unclip), per_image in per_setting.items():
        scores = aggregate(per_image)
        rows.append({"thresh": thresh, "box_thresh": box_thresh, "unclip_ratio": unclip,
                     "precision": scores.precision, "recall": scores.recall, "hmean": scores.hmean})
    table = pd.DataFrame(rows).sort_values(["hmean", "precision"], ascending=False, kind="stable")
    return table.reset_index(drop=True)


def best_setting(table: pd.DataFrame) -> dict[str, float]:
    """The first row of a search table as postprocess settings."""
    row = table.iloc[0]
    unclip = row["unclip_ratio"]
    return {"thresh": float(row["thresh"]), "box_thresh": float(row["box_thresh"]),
            "unclip_ratio": None if pd.isna(unclip) else float(unclip)}


def polygons_from_maps(maps: Sequence[CachedMap], config: PostprocessConfig) -> dict[str, list[np.ndarray]]:
    """Postprocess every cached map with one setting: ``{image: [polygon, ...]}``."""
    return {m.name: postprocess(m.prob.astype(np.float32), m.scale, m.image_size, config)[0] for m in maps}


def scores_at(maps: Sequence[CachedMap], config: PostprocessConfig) -> dict[str, ImageResult]:
    """Each cached image's CLEval at one setting (per image, for paired comparisons of settings)."""
    metric, polygons = CLEvalConfig(), polygons_from_maps(maps, config)
    return {m.name: evaluate_image(m.gt, polygons[m.name], metric) for m in maps}
