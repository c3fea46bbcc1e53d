"""Per-image P / R / H as a table: from a metric result or from the files that hold them (``python -m kit metric
--per-image`` JSON, a run's ``val_per_image.csv``). Apart from the metric's command line, so that it stays
pandas-free; training writes these tables, significance and the comparisons read them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Union

import pandas as pd

from kit.errors import InputError
from kit.evaluation.cleval import DatasetResult, ImageResult

SCORES = ("precision", "recall", "hmean")

PerImage = Union[pd.DataFrame, DatasetResult, Mapping[str, ImageResult], str, Path]


def per_image_scores(source: PerImage) -> pd.DataFrame:
    """Per-image P / R / H indexed by image name, from a metric result, its per-image map, a table
    (columns ``precision``, ``recall``, ``hmean`` and ``image`` or an image index) or a file: the
    JSON of ``python -m kit metric --per-image`` or a CSV such as a run's ``val_per_image.csv``."""
    if isinstance(source, DatasetResult):
        source = source.per_image
    if isinstance(source, (str, Path)):
        source = _read_per_image(Path(source))
    if isinstance(source, Mapping):
        source = pd.DataFrame.from_dict({name: r.scores() for name, r in source.items()}, orient="index")
    table = source.set_index("image") if "image" in source.columns else source
    missing = [s for s in SCORES if s not in table.columns]
    if missing:
        raise InputError(f"per-image scores need columns {list(SCORES)}; missing {missing}")
    if table.index.has_duplicates:
        raise InputError(f"image {table.index[table.index.duplicated()][0]!r} is listed twice")
    out = table[list(SCORES)].astype(float)
    out.index = out.index.astype(str)
    out.index.name = "image"
    return out


def _read_per_image(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"per-image scores {path} not found")
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return pd.DataFrame.from_dict({k: {s: v[s] for s in SCORES} for k, v in doc["per_image"].items()},
                                      orient="index")
    except (ValueError, KeyError, TypeError) as err:
        raise InputError(f"{path}: not per-image scores (python -m kit metric --per-image writes them): "
                         f"{type(err).__name__} {err}") from None
