"""The competition data layout: read, validate, write and split annotations.

Layout: ``DATA/images/{split}/*.jpg`` and ``DATA/jsons/{split}.json`` with
``{"images": {file: {"img_w", "img_h", "words": {id: {"points": [[x, y], ...], ...}}}}}``.

Rules, applied on load and counted in :class:`LoadReport` (nothing is dropped silently):

* a polygon with fewer than 4 points is excluded from training and evaluation (the
  competition's rule) and listed in ``report.too_few_points``;
* a degenerate polygon (zero area: collinear or repeated points) is kept with
  ``Word.degenerate = True``: training treats it as a don't-care region, the metric
  applies its own rule;
* points outside the image are kept as given (the metric sees the raw annotation) and
  listed in ``report.outside_image``; training targets clip them to the image.
* EXIF orientation: pixels are read as stored (EXIF ignored), because the annotations
  are in the stored pixel frame; :func:`check_image_sizes` reports every image whose
  ``img_w``/``img_h`` only matches its EXIF-rotated size (there, the polygons would not
  match the stored pixels) or matches neither.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import cv2
import numpy as np
from PIL import Image

from kit.errors import InputError
from kit.files import write_text

SPLITS = ("train", "val", "test")
MIN_POINTS = 4
#: What a folder of images to predict may hold.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
EXIF_ORIENTATION_TAG = 0x0112
#: EXIF orientations that swap width and height (transpose, rotate 90/270, transverse).
EXIF_SWAPS_AXES = {5, 6, 7, 8}


class AnnotationError(InputError):
    """An annotation file or its images cannot be used; the message says where."""


class AnnotationWarning(UserWarning):
    """Annotations were loaded, but some polygons were excluded or flagged."""


@dataclass
class Word:
    """One annotated word: its polygon in original image pixels and the keys kept as given."""

    id: str
    points: np.ndarray
    degenerate: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImageRecord:
    """One image of a split with its words (empty for the test split)."""

    name: str
    path: Path
    width: int
    height: int
    words: list[Word] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def polygons(self, include_degenerate: bool = True) -> list[np.ndarray]:
        """The word polygons as (N, 2) float arrays."""
        return [w.points for w in self.words if include_degenerate or not w.degenerate]


@dataclass
class LoadReport:
    """What loading a split found: counts and the (image, word id) of every flagged polygon."""

    json_path: Path
    n_images: int = 0
    n_words: int = 0
    too_few_points: list[tuple[str, str]] = field(default_factory=list)
    degenerate: list[tuple[str, str]] = field(default_factory=list)
    outside_image: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        """One line per kind of flagged polygon, with an example of each."""
        lines = [f"{self.json_path}: {self.n_images} images, {self.n_words} words kept"]
        for label, items in (
            (f"polygons with < {MIN_POINTS} points excluded", self.too_few_points),
            ("degenerate polygons kept as don't-care", self.degenerate),
            ("polygons with points outside the image (kept; clipped for training)", self.outside_image),
        ):
            if items:
                lines.append(f"  {len(items)} {label}, e.g. {items[0][0]} word {items[0][1]}")
        return "\n".join(lines)


def _parse_points(raw: Any, where: str) -> np.ndarray:
    """Accept [[x, y], ...] or a flat [x1, y1, ...]; reject odd, non-numeric or non-finite input.

    Stricter than the metric's reader (``kit.evaluation.cleval_files._flat_points``), on purpose:
    training needs whole points, while the metric flattens whatever each point holds, as the
    reference does, and leaves odd or short polygons to its own skip rule.
    """
    if not isinstance(raw, list):
        raise AnnotationError(f"{where}: 'points' must be a list, got {type(raw).__name__}")
    flat: list[Any] = []
    for item in raw:
        if isinstance(item, (list, tuple)):
            if len(item) != 2:
                raise AnnotationError(f"{where}: each point must be [x, y], got {item!r}")
            flat.extend(item)
        else:
            flat.append(item)
    if len(flat) % 2:
        raise AnnotationError(f"{where}: odd number of coordinates ({len(flat)})")
    for value in flat:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise AnnotationError(f"{where}: non-numeric coordinate {value!r}")
        if not math.isfinite(value):
            raise AnnotationError(f"{where}: non-finite coordinate {value!r}")
    return np.asarray(flat, dtype=np.float64).reshape(-1, 2)


def _positive_int(entry: dict, key: str, where: str) -> int:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise AnnotationError(f"{where}: '{key}' must be a positive number, got {value!r}")
    return int(value)


def read_images_object(json_path: Path) -> dict[str, Any]:
    """The ``images`` object of a competition JSON; a missing, unreadable or malformed file is an error naming it."""
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnnotationError(f"{json_path}: annotation file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AnnotationError(f"{json_path}: not valid JSON ({err})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), dict):
        raise AnnotationError(f"{json_path}: top level must be an object with an 'images' object")
    return doc["images"]


def read_annotations(json_path: Path | str,
                     image_dir: Path | str | None = None) -> tuple[list[ImageRecord], LoadReport]:
    """Read and validate one competition JSON; images are looked up in ``image_dir`` if given."""
    json_path = Path(json_path)
    images = read_images_object(json_path)
    report = LoadReport(json_path)
    records = []
    for name, entry in images.items():
        where = f"{json_path} image {name!r}"
        if not isinstance(entry, dict):
            raise AnnotationError(f"{where}: entry must be an object")
        width, height = _positive_int(entry, "img_w", where), _positive_int(entry, "img_h", where)
        raw_words = entry.get("words", {})
        if not isinstance(raw_words, dict):
            raise AnnotationError(f"{where}: 'words' must be an object of word id -> word")
        words = []
        for word_id, raw in raw_words.items():
            word_where = f"{where} word {word_id!r}"
            if not isinstance(raw, dict) or "points" not in raw:
                raise AnnotationError(f"{word_where}: a word must be an object with 'points'")
            points = _parse_points(raw["points"], word_where)
            if len(points) < MIN_POINTS:
                report.too_few_points.append((name, word_id))
                continue
            degenerate = cv2.contourArea(points.astype(np.float32)) <= 0.0
            if degenerate:
                report.degenerate.append((name, word_id))
            if (points < 0).any() or (points[:, 0] > width).any() or (points[:, 1] > height).any():
                report.outside_image.append((name, word_id))
            extra = {k: v for k, v in raw.items() if k != "points"}
            words.append(Word(str(word_id), points, degenerate, extra))
        extra = {k: v for k, v in entry.items() if k not in ("img_w", "img_h", "words")}
        path = Path(image_dir) / name if image_dir is not None else Path(name)
        records.append(ImageRecord(name, path, width, height, words, extra))
        report.n_words += len(words)
    report.n_images = len(records)

    if image_dir is not None:
        missing = [r.name for r in records if not r.path.is_file()]
        if missing:
            raise AnnotationError(f"{json_path}: {len(missing)} listed images missing from {image_dir}: "
                                  f"{_first_names(missing)}")
        unreadable = [r.name for r in records if header_size(r.path) is None]
        if unreadable:
            raise AnnotationError(f"{json_path}: {len(unreadable)} listed images in {image_dir} are empty or not "
                                  f"images (their header does not decode): {_first_names(unreadable)}")
    if report.too_few_points or report.degenerate or report.outside_image:
        warnings.warn(report.summary(), AnnotationWarning, stacklevel=2)
    return records, report


def split_paths(data_dir: Path | str, split: str) -> tuple[Path, Path]:
    """(json path, image folder) of a split in the competition layout."""
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; expected one of {SPLITS}")
    data_dir = Path(data_dir)
    return data_dir / "jsons" / f"{split}.json", data_dir / "images" / split


def load_split(data_dir: Path | str, split: str) -> tuple[list[ImageRecord], LoadReport]:
    """Read one split of a dataset in the competition layout, checking its images exist."""
    json_path, image_dir = split_paths(data_dir, split)
    return read_annotations(json_path, image_dir)


def available_splits(data_dir: Path | str) -> list[str]:
    """The splits whose JSON exists under ``data_dir``."""
    return [s for s in SPLITS if split_paths(data_dir, s)[0].is_file()]


def to_json_doc(records: Iterable[ImageRecord]) -> dict[str, Any]:
    """The competition JSON for ``records``, with every extra key written back."""
    images = {}
    for r in records:
        words = {w.id: {"points": w.points.tolist(), **w.extra} for w in r.words}
        images[r.name] = {"img_w": r.width, "img_h": r.height, "words": words, **r.extra}
    return {"images": images}


def write_annotations(records: Iterable[ImageRecord], json_path: Path | str) -> Path:
    """Write ``records`` as a competition JSON (creating folders)."""
    return write_text(json_path, json.dumps(to_json_doc(records), ensure_ascii=False))


def read_image(path: Path | str) -> np.ndarray:
    """RGB uint8 pixels as stored, EXIF orientation ignored (the annotations' frame)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise AnnotationError(f"{path}: missing or not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _first_names(names: list[str], shown: int = 10) -> str:
    return ", ".join(names[:shown]) + (" ..." if len(names) > shown else "")


def header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) as stored, from the image header alone; None for an empty or undecodable file."""
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError):  # PIL's UnidentifiedImageError is an OSError
        return None


def image_records(images: str | Path | Iterable[ImageRecord]) -> list[ImageRecord]:
    """Records for a folder of images (sizes read from the headers) or the given records.

    Files that do not decode are left out with one warning listing them (prediction goes on with the rest).
    """
    if isinstance(images, (str, Path)):
        folder = Path(images)
        if not folder.is_dir():
            raise FileNotFoundError(f"image folder not found: {folder}")
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
        records, unreadable = [], []
        for p in paths:
            size = header_size(p)  # the stored size: the frame read_image returns
            if size is None:
                unreadable.append(p.name)
            else:
                records.append(ImageRecord(p.name, p, *size))
        if unreadable:
            warnings.warn(f"{folder}: {len(unreadable)} files are empty or not images and are skipped: "
                          f"{_first_names(unreadable)}", AnnotationWarning, stacklevel=2)
        if not records:
            raise FileNotFoundError(f"no readable images in {folder}")
        return records
    return list(images)


def check_image_sizes(records: Iterable[ImageRecord]) -> list[dict[str, Any]]:
    """Compare each ``img_w``/``img_h`` to the stored and EXIF-rotated sizes; return the mismatches.

    ``status`` is ``"exif_rotated"`` when the annotation matches only the EXIF-rotated view
    (its polygons do not fit the stored pixels the kit reads) and ``"mismatch"`` when it
    matches neither. Reads image headers only.
    """
    problems = []
    for r in records:
        with Image.open(r.path) as im:
            raw_w, raw_h = im.size
            orientation = int(im.getexif().get(EXIF_ORIENTATION_TAG, 1))
        view_w, view_h = (raw_h, raw_w) if orientation in EXIF_SWAPS_AXES else (raw_w, raw_h)
        if (r.width, r.height) == (raw_w, raw_h):
            continue
        status = "exif_rotated" if (r.width, r.height) == (view_w, view_h) else "mismatch"
        problems.append(
            {"image": r.name, "status": status, "img_w": r.width, "img_h": r.height,
             "raw_w": raw_w, "raw_h": raw_h, "exif_orientation": orientation}
        )
    return problems


def make_folds(names: Iterable[str], n_folds: int = 5, seed: int = 42) -> dict[str, int]:
    """Seeded assignment of images to folds, independent of input order.

    Names are sorted, permuted by numpy's PCG64 (a stable stream), and cut into contiguous
    chunks; the larger chunks come last, so fold 0 of the competition's 3,272 train images
    holds 654 (the reports' 2,618 / 654 split).
    """
    ordered = sorted(set(names))
    if n_folds < 2 or n_folds > len(ordered):
        raise InputError(f"n_folds must be in [2, {len(ordered)}], got {n_folds}")
    perm = np.random.default_rng(seed).permutation(len(ordered))
    base, extra = divmod(len(ordered), n_folds)
    sizes = [base + (1 if f >= n_folds - extra else 0) for f in range(n_folds)]
    fold_of_rank = np.repeat(np.arange(n_folds), sizes)
    return {ordered[i]: int(fold_of_rank[rank]) for rank, i in enumerate(perm)}


def folds_file(names: Iterable[str], path: Path | str, n_folds: int = 5, seed: int = 42) -> dict[str, int]:
    """The fold assignment stored at ``path``: written on first use, then read and checked.

    The file makes a fold mean the same images on every machine; an existing file made for
    other images, folds or seed is an error rather than a silent reshuffle.
    """
    path = Path(path)
    names = sorted(set(names))
    if path.is_file():
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored.get("n_folds") != n_folds or stored.get("seed") != seed or sorted(stored["folds"]) != names:
            raise InputError(f"{path} holds folds for other images or settings; delete it or pass its path elsewhere")
        return {k: int(v) for k, v in stored["folds"].items()}
    folds = make_folds(names, n_folds, seed)
    write_text(path, json.dumps({"n_folds": n_folds, "seed": seed, "folds": folds}, indent=1))
    return folds


def split_by_fold(records: list[ImageRecord], folds: dict[str, int],
                  fold: int) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """(training records, held-out records) for one fold."""
    unknown = [r.name for r in records if r.name not in folds]
    if unknown:
        raise InputError(f"{len(unknown)} images have no fold, e.g. {unknown[0]}")
    return [r for r in records if folds[r.name] != fold], [r for r in records if folds[r.name] == fold]
