"""CLEval: hand-computed cases, invariances, agreement with the per-pair reference, files and CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from kit.data.annotations import load_split, to_json_doc
from kit.data.submission import write_submission
from kit.evaluation.cleval import (
    CLEvalAccumulator,
    aspect_ratio,
    aspect_ratios,
    evaluate,
    evaluate_image,
    false_char_count,
    pseudo_char_centres,
    pseudo_char_count,
)
from kit.evaluation.cleval_files import MetricInputError, evaluate_files, image_counts
from kit.paths import ROOT
from tests.reference import make_workload, reference_cleval_image

GOLDEN = ROOT.parent / "shared" / "cleval" / "cases"


def box(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


WORD = box(10, 10, 110, 30)  # 100 x 20: aspect 0.2 -> 5 pseudo characters at x = 20, 40, ..., 100


def test_pseudo_characters_of_a_word() -> None:
    assert aspect_ratio(WORD) == pytest.approx(0.2, rel=1e-6)
    assert pseudo_char_count(aspect_ratio(WORD)) == 5
    np.testing.assert_allclose(pseudo_char_centres(WORD, 5), [[20, 20], [40, 20], [60, 20], [80, 20], [100, 20]])
    assert pseudo_char_count(1.0) == 2  # round(2.5) == 2: Python rounds halves to even
    assert pseudo_char_count(0.0) == 100 and false_char_count(0.0) == 100  # no hull: the cap
    assert pseudo_char_count(aspect_ratio(box(0, 0, 2000, 10))) == 100
    vertical = np.array([[10, 10], [30, 10], [30, 110], [10, 110]], float)
    assert pseudo_char_count(aspect_ratio(vertical)) == 5


def test_convex_shortcut_gives_qhull_character_counts() -> None:
    gt, _ = make_workload(10, 115, 5)
    rng = np.random.default_rng(0)
    polygons = [p + rng.normal(0, 2, p.shape) for ps in gt.values() for p in ps]
    polygons.append(np.array([[0, 0], [10, 0], [10, 10], [5, 3], [0, 10]], float))  # concave: Qhull path
    with_qhull = [pseudo_char_count(r) for r in aspect_ratios(polygons)]
    assert with_qhull == [pseudo_char_count(r) for r in aspect_ratios(polygons, hull_order=False)]


def test_perfect_split_merge_miss_and_false_positive() -> None:
    assert evaluate_image([WORD], [WORD]).scores() == {"precision": 1.0, "recall": 1.0, "hmean": 1.0}
    halves = [box(10, 10, 60, 30), box(60, 10, 110, 30)]
    split = evaluate_image([WORD], halves)
    assert (split.num_char_tp, split.gran_recall, split.split, split.matches) == (5, 1.0, [0], [([0], [0, 1])])
    assert (split.recall, split.precision) == pytest.approx((4 / 5, 1.0))

    words = [box(10, 10, 60, 30), box(70, 10, 120, 30)]  # 50 x 20: aspect 0.4 -> 3 characters each
    merged = evaluate_image(words, [box(10, 10, 120, 30)])
    assert merged.merged == [0] and merged.gran_precision == 1.0
    assert (merged.recall, merged.precision) == pytest.approx((1.0, 5 / 6))

    missed = evaluate_image([WORD, box(10, 50, 110, 70)], [WORD])
    assert missed.missed == [1] and missed.recall == pytest.approx(0.5) and missed.precision == 1.0

    fp = evaluate_image([WORD], [WORD, box(200, 200, 240, 210)])  # 40 x 10: 1 / 0.25 -> 4 false characters
    assert fp.false_positives == [1] and fp.num_char_fp == 4
    assert fp.precision == pytest.approx(5 / 9)


def test_area_precision_constraint_at_0_3() -> None:
    gt = [box(0, 0, 100, 20)]  # centres at x = 10, 30, ..., 90 and y = 10
    exactly = evaluate_image(gt, [box(0, 8, 30, 48)])  # 30 x 12 of 30 x 40 inside: area precision 0.3
    assert exactly.matches == [([0], [0])] and exactly.num_char_tp == 1  # x = 30 is on its right edge: out
    assert not evaluate_image(gt, [box(0, 8, 30, 49)]).matches  # 12 / 41 < 0.3: a false positive
    assert evaluate_image(gt, [box(0, 8, 30, 49)]).false_positives == [0]
    # two GT words in one detection: merged when the summed area precision reaches 0.3
    pair = [box(0, 0, 40, 20), box(50, 0, 90, 20)]
    assert evaluate_image(pair, [box(0, 8, 90, 40)]).merged == [0]  # 480 / 2880 each: 0.17 + 0.17 >= 0.3
    assert not evaluate_image(pair, [box(0, 8, 90, 98)]).matches  # 960 / 8100 < 0.3


def test_word_links_say_which_detection_took_each_word_and_why() -> None:
    halves = [box(10, 10, 60, 30), box(60, 10, 110, 30), box(300, 300, 340, 310)]
    split = evaluate_image([WORD, box(10, 50, 110, 70)], halves)
    # WORD's 5 centres at x = 20, 40, ..., 100: two in the left half, three (x = 60 on its left edge) in the right
    assert split.word_links == {0: [(0, 1.0, 2, True), (1, 1.0, 3, True)]}
    assert 1 not in split.word_links and split.missed == [1]  # no detection holds a centre of the missed word
    low = evaluate_image([box(0, 0, 100, 20)], [box(0, 8, 30, 49)])  # area precision 12 / 41: under 0.3
    ((det, ap, centres, matched),) = low.word_links[0]
    assert (det, centres, matched) == (0, 1, False) and ap == pytest.approx(12 / 41, abs=1e-6)
    # indices are the input's: a skipped short GT polygon and a skipped detection shift nothing
    shifted = evaluate_image([[[0, 0], [1, 1]], WORD], [[[0, 0], [1, 1]], WORD])
    assert shifted.word_links == {1: [(1, 1.0, 5, True)]}


def test_coordinates_are_truncated_toward_zero() -> None:
    # 10.9 -> 10 and 110.99 -> 110: the truncated detection equals the GT exactly
    det = box(10.9, 10.9, 110.99, 30.99)
    assert evaluate_image([WORD], [det]).scores() == {"precision": 1.0, "recall": 1.0, "hmean": 1.0}
    # a centre at x = 100 lies on the right edge of a box ending at 100.7 (truncated to 100): outside
    left = evaluate_image([WORD], [box(10, 10, 100.7, 30)])
    assert left.num_char_tp == 4


def test_only_the_first_500_detections_count() -> None:
    far = [box(1000 + 3 * i, 1000, 1002 + 3 * i, 1010) for i in range(500)]
    result = evaluate_image([WORD], far + [WORD])
    assert result.num_char_tp == 0 and len(result.skipped_det) == 1
    assert evaluate_image([WORD], [WORD] + far).num_char_tp == 5


def test_degenerate_and_short_polygons() -> None:
    line = np.array([[10, 200], [50, 200], [90, 200], [130, 200]], float)  # collinear: no hull, 100 characters
    result = evaluate_image([WORD, line], [WORD])
    assert result.num_char_gt == 105 and result.recall == pytest.approx(5 / 105, rel=1e-6)
    flat_det = evaluate_image([WORD], [WORD, line])
    assert flat_det.num_char_fp == 100
    short = evaluate_image([WORD], [WORD, np.array([[0, 0], [5, 0], [5, 5]], float)])
    assert short.skipped_det == [(1, "fewer than 4 points (3)")] and short.precision == 1.0
    odd = evaluate_image([WORD], [WORD, [50, 300, 1, 60, 300, 60, 310, 50, 310]])
    assert odd.skipped_det == [(1, "odd coordinate count (9)")] and odd.precision == 1.0


def test_gt_is_rounded_half_to_even_and_the_cap_counts_invalid_entries() -> None:
    # 10.5 -> 10 and 30.5 -> 30: the rounded GT is WORD exactly (5 characters), found by WORD
    assert evaluate_image([WORD + 0.5], [WORD]).scores() == {"precision": 1.0, "recall": 1.0, "hmean": 1.0}
    shifted = evaluate_image([box(-0.5, 9.5, 101.5, 30.5)], [box(0, 10, 102, 30)])  # -> (0, 10, 102, 30)
    assert shifted.recall == 1.0
    invalid = [np.zeros((3, 2))] * 499
    assert evaluate_image([WORD], invalid + [WORD]).num_char_tp == 5
    capped = evaluate_image([WORD], invalid + [np.zeros((3, 2)), WORD])
    assert capped.num_char_tp == 0 and capped.skipped_det[-1] == (500, "beyond the first 500 detections")


def test_empty_gt_or_prediction_scores_zero() -> None:
    assert evaluate_image([WORD], []).scores() == {"precision": 0.0, "recall": 0.0, "hmean": 0.0}
    assert evaluate_image([], [WORD]).scores() == {"precision": 0.0, "recall": 0.0, "hmean": 0.0}
    assert evaluate_image([], []).hmean == 0.0


def test_self_intersecting_and_many_vertex_polygons() -> None:
    bowtie = np.array([[10, 10], [110, 30], [110, 10], [10, 30]], float)
    result = evaluate_image([WORD], [bowtie])  # ring area 0: no area precision, a false positive
    assert result.num_char_tp == 0 and result.false_positives == [0]
    xs = np.linspace(10, 110, 12)
    poly = np.concatenate([np.stack([xs, np.full(12, 10.0)], 1), np.stack([xs[::-1], np.full(12, 30.0)], 1)])
    many = evaluate_image([poly], [WORD])  # 24 points: top edge left to right, bottom edge back
    assert many.gt_chars == [5] and many.scores() == {"precision": 1.0, "recall": 1.0, "hmean": 1.0}


@pytest.mark.parametrize("seed", range(3))
def test_invariances(seed: int) -> None:
    gt, pred = make_workload(1, 60, seed)
    (name,) = gt
    gts, dets = gt[name], pred[name]
    assert evaluate_image(gts, gts).scores() == {"precision": 1.0, "recall": 1.0, "hmean": 1.0}
    base = evaluate_image(gts, dets)
    order = np.random.default_rng(seed).permutation(len(dets))
    permuted = evaluate_image(gts, [dets[i] for i in order])
    assert permuted.scores() == base.scores()
    assert sorted(order[permuted.false_positives].tolist()) == sorted(base.false_positives)
    shifted = evaluate_image([g + [37, 11] for g in gts], [d + [37, 11] for d in dets])
    assert shifted.scores() == base.scores()


@pytest.mark.parametrize("seed", range(4))
def test_fast_equals_reference(seed: int) -> None:
    gt, pred = make_workload(2, 80, 100 + seed)
    for name in gt:
        fast, ref = evaluate_image(gt[name], pred[name]), reference_cleval_image(gt[name], pred[name])
        for key in ("precision", "recall", "hmean", "num_char_gt", "num_char_det", "num_char_tp", "num_char_fp",
                    "gran_recall", "gran_precision", "num_splitted", "num_merged", "num_char_overlapped"):
            assert getattr(fast, key) == getattr(ref, key), key


def test_dataset_mean_pooled_accumulator_and_workers() -> None:
    gt, pred = make_workload(6, 40, 7)
    del pred["img_0003.jpg"]  # no detections for this image: it scores 0
    mean = evaluate(gt, pred)
    per = [evaluate_image(gt[n], pred.get(n, [])) for n in gt]
    assert mean.hmean == pytest.approx(np.mean([r.hmean for r in per]), abs=1e-12)
    assert mean.per_image["img_0003.jpg"].hmean == 0.0
    pooled = evaluate(gt, pred, aggregation="pooled")
    tp = sum(r.num_char_tp - r.gran_recall for r in per)
    assert pooled.recall == pytest.approx(tp / sum(r.num_char_gt for r in per), rel=1e-6)
    assert evaluate(gt, pred, workers=2).scores() == mean.scores()
    acc = CLEvalAccumulator()
    for name in gt:
        acc.update(name, gt[name], pred.get(name, []))
    assert acc.compute().scores() == mean.scores()
    assert mean.missing_pred_images == ["img_0003.jpg"]
    ignored = evaluate(gt, {**pred, "stranger.jpg": [WORD]})  # as the leaderboard: ignored, and listed
    assert ignored.scores() == mean.scores() and ignored.ignored_pred_images == ["stranger.jpg"]


def write_json(path: Path, polys: dict[str, list[np.ndarray]]) -> Path:
    images = {name: {"img_w": 1280, "img_h": 1280,
                     "words": {f"{i:04d}": {"points": p.tolist()} for i, p in enumerate(ps)}}
              for name, ps in polys.items()}
    path.write_text(json.dumps({"images": images}))
    return path


def test_files_and_command_line(tmp_path: Path) -> None:
    gt, pred = make_workload(3, 30, 3)
    gt_json, pred_json = write_json(tmp_path / "gt.json", gt), write_json(tmp_path / "pred.json", pred)
    expected = evaluate(gt, pred)
    assert evaluate_files(gt_json, pred_json).hmean == pytest.approx(expected.hmean, abs=1e-12)
    out = subprocess.run([sys.executable, "-m", "kit", "metric", str(gt_json), str(pred_json), "--per-image"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    printed = json.loads(out.stdout)
    assert printed["hmean"] == pytest.approx(expected.hmean, abs=1e-12) and out.stderr == ""
    assert set(printed["per_image"]) == set(gt) and printed["per_image"]["img_0000.jpg"]["counts"]["gt_chars"] > 0


def test_files_report_what_they_skip_and_strict_refuses(tmp_path: Path) -> None:
    gt_json = write_json(tmp_path / "gt.json", {"a.jpg": [WORD], "b.jpg": [WORD]})
    doc = {"images": {"a.jpg": {"words": {"1": {"points": WORD.tolist()}, "2": {"points": [[50, 300, 1]]}}},
                      "stranger.jpg": {"words": {}}}}  # no img_w / img_h, as the baseline's own predictions
    pred_json = tmp_path / "pred.json"
    pred_json.write_text(json.dumps(doc))
    result = evaluate_files(gt_json, pred_json)
    assert result.hmean == pytest.approx(0.5)  # a.jpg perfect, b.jpg missing scores 0
    assert result.problems == {"skipped_polygons": {"a.jpg": [{"source": "pred", "word": "2",
                                                              "reason": "odd coordinate count (3)"}]},
                               "ignored_pred_images": ["stranger.jpg"], "missing_pred_images": ["b.jpg"]}
    run = subprocess.run([sys.executable, "-m", "kit", "metric", str(gt_json), str(pred_json)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0 and json.loads(run.stdout)["ignored_pred_images"] == ["stranger.jpg"]
    assert run.stderr.count("warning:") == 3 and "word 2: odd coordinate count" in run.stderr
    strict = subprocess.run([sys.executable, "-m", "kit", "metric", str(gt_json), str(pred_json), "--strict"],
                            capture_output=True, text=True, cwd=ROOT)
    assert strict.returncode == 2 and "Traceback" not in strict.stderr and "--strict" in strict.stderr
    with pytest.raises(MetricInputError, match="stranger.jpg"):
        evaluate_files(gt_json, pred_json, strict=True)


@pytest.mark.parametrize("content, message", [
    ("img,points\n", "not valid JSON"),
    ('{"pictures": {}}', "'images' object"),
    ('{"images": {"a.jpg": {"words": {"7": {"points": [[1, "x"]]}}}}}', "image 'a.jpg' word '7': non-numeric"),
])
def test_unreadable_input_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    gt_json = write_json(tmp_path / "gt.json", {"a.jpg": [WORD]})
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(MetricInputError, match=message):
        evaluate_files(gt_json, tmp_path / "bad.json")
    run = subprocess.run([sys.executable, "-m", "kit", "metric", str(gt_json), str(tmp_path / "bad.json")],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2 and run.stderr.startswith("error: ") and "Traceback" not in run.stderr


def golden_cases() -> list[Path]:
    return sorted(p for p in GOLDEN.iterdir() if p.is_dir()) if GOLDEN.is_dir() else []


@pytest.mark.skipif(not golden_cases(), reason=f"no golden cases in {GOLDEN}")
@pytest.mark.parametrize("case", golden_cases(), ids=lambda p: p.name)
def test_golden_case(case: Path) -> None:
    """Each case of the competition's reference: scores (1e-6, float32 means) and every per-image tally."""
    expected = json.loads((case / "expected.json").read_text())
    result = evaluate_files(case / "gt.json", case / "pred.json")
    for key in ("precision", "recall", "hmean"):
        assert getattr(result, key) == pytest.approx(expected[key], abs=1e-6)
    assert sorted(result.ignored_pred_images) == sorted(expected.get("ignored_pred_images", []))
    for name, scores in expected["per_image"].items():
        for key in ("precision", "recall", "hmean"):
            assert result.per_image[name].scores()[key] == pytest.approx(scores[key], abs=1e-6)
        counts = scores.get("counts", {})
        if "missing_prediction" in counts:
            assert name in result.missing_pred_images
            continue
        ours = image_counts(result.per_image[name])
        assert {k: ours[k] for k in counts if k in ours} == {k: v for k, v in counts.items() if k in ours}


def test_a_submission_csv_scores_as_its_json(synth_dir: Path, tmp_path: Path) -> None:
    """The leaderboard scores the CSV: the same polygons as a JSON give the same scores, CLI included."""
    records = load_split(synth_dir, "val")[0]
    rng = np.random.default_rng(0)
    predicted = [replace(r, words=[replace(w, points=np.rint(w.points + rng.normal(0, 3, w.points.shape)),
                                           extra={"score": 1.0}) for w in r.words[::2]]) for r in records]
    predicted[0] = replace(predicted[0], words=[])  # an image without detections: an empty CSV cell
    csv_path = write_submission(predicted, [r.name for r in records], tmp_path / "sub.csv")
    json_path = tmp_path / "pred.json"
    json_path.write_text(json.dumps(to_json_doc(predicted)))
    gt = synth_dir / "jsons" / "val.json"
    from_csv, from_json = evaluate_files(gt, csv_path), evaluate_files(gt, json_path)
    assert from_csv.scores() == from_json.scores() and 0 < from_csv.recall < 0.7
    run = subprocess.run([sys.executable, "-m", "kit", "metric", str(gt), str(csv_path)], capture_output=True,
                         text=True, cwd=ROOT)
    assert run.returncode == 0 and json.loads(run.stdout)["hmean"] == pytest.approx(from_json.hmean)
    (tmp_path / "bad.csv").write_text("filename,polygons\nv.jpg,1 2 x 4 5 6 7 8\n")
    with pytest.raises(MetricInputError, match=r"bad.csv row 2 \(v.jpg\) polygon 1: non-numeric"):
        evaluate_files(gt, tmp_path / "bad.csv")
