"""CLEval over files: the GT and prediction files read by the reference's rules, what was skipped, and the
``python -m kit metric`` command.

The rules themselves (``kit.evaluation.cleval``) take polygons and know nothing of files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from kit.data.annotations import AnnotationError, read_images_object
from kit.data.submission import HEADER, csv_rows
from kit.errors import InputError
from kit.evaluation.cleval import OVER_CAP, CLEvalConfig, DatasetResult, ImageResult, evaluate


class MetricInputError(InputError):
    """A GT or prediction file the metric cannot read (or, with ``strict``, would have to skip parts of)."""


Words = list[tuple[str, np.ndarray]]  # (word id, flat coordinates) in file order


def _flat_points(raw: Any, where: str) -> np.ndarray:
    """The reference's flattening: the numbers of every point concatenated, whatever each point's length.

    Laxer than the training reader (``kit.data.annotations._parse_points``), on purpose: the score
    must be the reference's, which flattens ``[[x, y, z], ...]`` too and skips odd or short polygons
    (reported) instead of refusing the file.
    """
    if not isinstance(raw, list):
        raise MetricInputError(f"{where}: 'points' must be a list, got {type(raw).__name__}")
    flat: list[Any] = []
    for item in raw:
        flat.extend(item if isinstance(item, (list, tuple)) else [item])
    for value in flat:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise MetricInputError(f"{where}: non-numeric coordinate {value!r}")
    return np.asarray(flat, np.float64)


def read_metric_json(path: Path | str, gt: bool) -> dict[str, Words]:
    """``{image: [(word id, flat coordinates), ...]}`` read by the reference's rules (SPEC.md section 1).

    Unreadable input is an error naming the file, image and word; what the reference would
    skip (short or odd polygons) is kept here and skipped, and reported, by the metric.
    ``img_w`` / ``img_h`` are not needed. GT words with an empty ``points`` list are dropped,
    and every GT image needs ``words`` (the reference fails without it); a prediction
    image without ``words`` has no detections.
    """
    path = Path(path)
    try:
        images = read_images_object(path)
    except AnnotationError as err:
        raise MetricInputError(str(err)) from None
    out: dict[str, Words] = {}
    for name, entry in images.items():
        where = f"{path} image {name!r}"
        if not isinstance(entry, dict):
            raise MetricInputError(f"{where}: entry must be an object")
        if gt and "words" not in entry:
            raise MetricInputError(f"{where}: a GT image needs 'words' (an empty object for none)")
        words = entry.get("words") or {}
        if not isinstance(words, dict):
            raise MetricInputError(f"{where}: 'words' must be an object of word id -> word")
        out[name] = []
        for word_id, word in words.items():
            if not isinstance(word, dict) or "points" not in word:
                raise MetricInputError(f"{where} word {word_id!r}: a word must be an object with 'points'")
            flat = _flat_points(word["points"], f"{where} word {word_id!r}")
            if not np.isfinite(flat).all():
                raise MetricInputError(f"{where} word {word_id!r}: non-finite coordinate")
            if gt and not flat.size:
                continue
            out[name].append((str(word_id), flat))
    return out


def is_submission_csv(path: Path | str) -> bool:
    """True when ``path`` starts with the leaderboard CSV's header (``filename,polygons``)."""
    with Path(path).open("rb") as f:
        return f.read(32).lstrip(b"\xef\xbb\xbf").startswith(",".join(HEADER).encode())


def read_metric_csv(path: Path | str) -> dict[str, Words]:
    """``{image: [(word id, flat coordinates), ...]}`` of a leaderboard CSV (:mod:`kit.data.submission`), in row
    order.

    Word ids are the polygons' 1-based positions in their row; polygons the metric would
    skip (odd or short) are kept here and skipped, and reported, by the metric.
    """
    path = Path(path)
    rows = csv_rows(path)
    if not rows or [c.lstrip("\ufeff") for c in rows[0]] != HEADER:
        raise MetricInputError(f"{path}: not a leaderboard CSV (header must be {','.join(HEADER)})")
    out: dict[str, Words] = {}
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != 2:
            raise MetricInputError(f"{path} row {number}: expected 2 columns (filename,polygons), got {len(row)}")
        name, text = row
        out[name] = []
        for k, polygon in enumerate(text.split("|") if text.strip() else [], start=1):
            try:
                flat = np.array(polygon.split(), np.float64)
            except ValueError:
                raise MetricInputError(f"{path} row {number} ({name}) polygon {k}: non-numeric value") from None
            out[name].append((f"{k:04d}", flat))
    return out


def _coordinates(words_by_image: Mapping[str, Words]) -> dict[str, list[np.ndarray]]:
    return {name: [points for _, points in words] for name, words in words_by_image.items()}


def polygons_by_image(json_path: Path | str, gt: bool = False) -> dict[str, list[np.ndarray]]:
    """``{image: [flat coordinates, ...]}`` of a competition JSON, read as the metric reads it."""
    return _coordinates(read_metric_json(json_path, gt))


def input_problems(result: DatasetResult, gt: Mapping[str, Words], pred: Mapping[str, Words]) -> dict[str, Any]:
    """What the metric skipped or ignored, by image and word id, for the output JSON and warnings."""
    skipped: dict[str, list[dict[str, str]]] = {}
    for name, r in result.per_image.items():
        items = [{"source": "gt", "word": gt[name][i][0], "reason": why} for i, why in r.skipped_gt]
        items += [{"source": "pred", "word": pred[name][i][0], "reason": why} for i, why in r.skipped_det]
        if items:
            skipped[name] = items
    return {"skipped_polygons": skipped, "ignored_pred_images": result.ignored_pred_images,
            "missing_pred_images": result.missing_pred_images}


def problem_lines(problems: Mapping[str, Any]) -> list[str]:
    """One readable line per kind of problem, with a count and an example."""
    lines = []
    skipped = [(name, item) for name, items in problems["skipped_polygons"].items() for item in items]
    if skipped:
        name, item = skipped[0]
        lines.append(f"{len(skipped)} polygons skipped (they count for nothing), e.g. {item['source']} {name} word "
                     f"{item['word']}: {item['reason']}")
    if problems["ignored_pred_images"]:
        lines.append(f"{len(problems['ignored_pred_images'])} predicted images are not in the GT and were ignored, "
                     f"e.g. {problems['ignored_pred_images'][0]}")
    if problems["missing_pred_images"]:
        lines.append(f"{len(problems['missing_pred_images'])} GT images have no predictions and score 0, "
                     f"e.g. {problems['missing_pred_images'][0]}")
    return lines


def evaluate_files(gt_json: Path | str, pred_json: Path | str, config: CLEvalConfig | None = None,
                   aggregation: str = "mean", workers: int = 1, strict: bool = False) -> DatasetResult:
    """CLEval of predictions (a competition JSON, or the leaderboard CSV, told apart by its header) against a
    GT JSON, as the leaderboard scores it.

    ``result.problems`` lists what was skipped or ignored; ``strict`` makes any of it an error.
    """
    if not Path(pred_json).is_file():
        raise MetricInputError(f"{pred_json}: file not found")
    gt = read_metric_json(gt_json, gt=True)
    pred = read_metric_csv(pred_json) if is_submission_csv(pred_json) else read_metric_json(pred_json, gt=False)
    result = evaluate(_coordinates(gt), _coordinates(pred), config, aggregation, workers)
    result.problems = input_problems(result, gt, pred)
    found = problem_lines(result.problems)
    if strict and found:
        raise MetricInputError(f"{pred_json} against {gt_json} (--strict): {'; '.join(found)}")
    return result


def image_counts(result: ImageResult) -> dict[str, float]:
    """The per-image tallies, named as the golden cases' ``counts``."""
    return {"gt_chars": result.num_char_gt, "det_chars": result.num_char_det, "tp_chars": result.num_char_tp,
            "gran_recall": result.gran_recall, "gran_precision": result.gran_precision,
            "fp_chars": result.num_char_fp, "num_splitted": result.num_splitted, "num_merged": result.num_merged,
            "warn_skipped_polygons": sum(1 for _, why in result.skipped_gt + result.skipped_det
                                         if not why.startswith(OVER_CAP))}  # invalid ones, not those over the cap


def command(args: argparse.Namespace) -> None:
    """``python -m kit metric``: scores (and problems) as one JSON on stdout, warnings on stderr."""
    result = evaluate_files(args.gt, args.pred, aggregation="pooled" if args.pooled else "mean",
                            workers=args.workers, strict=args.strict)
    for line in problem_lines(result.problems):
        print(f"warning: {line}", file=sys.stderr)
    out: dict[str, Any] = {**result.scores(), "num_images": len(result.per_image), **result.problems}
    if args.per_image:
        out["per_image"] = {name: {**r.scores(), "counts": image_counts(r)} for name, r in result.per_image.items()}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
