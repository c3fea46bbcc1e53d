"""The leaderboard CSV: order, the 500 best, a JSON round trip, and every defect the validator must catch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kit.data.annotations import ImageRecord, Word, read_annotations, to_json_doc
from kit.data.submission import read_submission, write_submission
from kit.evaluation.leaderboard import check_submission
from kit.paths import ROOT

TEST_IMAGES = [ImageRecord(f"t{i}.jpg", Path(f"t{i}.jpg"), 200, 100) for i in range(3)]


def prediction(name: str, boxes: list[np.ndarray], scores: list[float]) -> ImageRecord:
    words = [Word(f"{i + 1:04d}", b, extra={"score": s}) for i, (b, s) in enumerate(zip(boxes, scores))]
    return ImageRecord(name, Path(name), 200, 100, words)


def quad(x: float, y: float) -> np.ndarray:
    return np.array([[x, y], [x + 20.4, y], [x + 20.4, y + 9.6], [x, y + 9.6]])


def test_rows_follow_the_test_order_and_round_trip(tmp_path: Path) -> None:
    preds = [prediction("t2.jpg", [quad(10, 10), quad(50.6, 20)], [0.9, 0.8]),
             prediction("t0.jpg", [quad(1, 2)], [0.7])]
    path = write_submission(preds, [r.name for r in TEST_IMAGES], tmp_path / "sub.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "filename,polygons"
    assert [line.split(",")[0] for line in lines[1:]] == ["t0.jpg", "t1.jpg", "t2.jpg"]
    assert lines[2] == "t1.jpg,"  # no predictions: an empty row, not a missing one
    assert lines[3] == "t2.jpg,10 10 30 10 30 20 10 20|51 20 71 20 71 30 51 30"
    back = {r.name: r for r in read_submission(path)}
    for pred in preds:
        assert len(back[pred.name].words) == len(pred.words)
        for a, b in zip(back[pred.name].words, pred.words):
            np.testing.assert_array_equal(a.points, np.rint(b.points))
    assert check_submission(path, TEST_IMAGES) == []
    # JSON -> CSV -> JSON keeps the (rounded) polygons
    json_path = tmp_path / "pred.json"
    json_path.write_text(json.dumps(to_json_doc(preds)))
    records, _ = read_annotations(json_path)
    again = write_submission(records, [r.name for r in TEST_IMAGES], tmp_path / "again.csv")
    assert again.read_text() == path.read_text()


def test_keeps_the_500_best_scoring(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    scores = rng.random(620).tolist()
    boxes = [quad(i % 150, i // 150 * 12) for i in range(620)]
    path = write_submission([prediction("t0.jpg", boxes, scores)], ["t0.jpg"], tmp_path / "sub.csv")
    kept = path.read_text().splitlines()[1].split(",")[1].split("|")
    assert len(kept) == 500
    best = np.argsort(scores)[::-1][:500]
    assert kept == [" ".join(str(int(v)) for v in np.rint(boxes[i]).astype(int).ravel()) for i in best]
    with pytest.raises(ValueError, match="not test images"):
        write_submission([prediction("zz.jpg", [], [])], ["t0.jpg"], tmp_path / "x.csv")


@pytest.mark.parametrize(("body", "message"), [
    ("t0.jpg,\nt1.jpg,\n", "1 test images missing, e.g. 't2.jpg'"),
    ("t0.jpg,\nt1.jpg,\nt2.jpg,\nt9.jpg,\n", "row 5 (t9.jpg): not a test image"),
    ("t0.jpg,\nt0.jpg,\nt1.jpg,\nt2.jpg,\n", "row 3 (t0.jpg): image listed twice"),
    ("t0.jpg,1 2 3 4 5 6 7\nt1.jpg,\nt2.jpg,\n", "polygon 1: odd number of coordinates (7)"),
    ("t0.jpg,1 2 3 x 5 6 7 8\nt1.jpg,\nt2.jpg,\n", "polygon 1: non-integer value 'x'"),
    ("t0.jpg,1 2 3 4 5 6 7 8|1.5 2 3 4 5 6 7 8\nt1.jpg,\nt2.jpg,\n", "polygon 2: non-integer value '1.5'"),
    ("t0.jpg,1 2 3 4 5 6\nt1.jpg,\nt2.jpg,\n", "polygon 1: 3 points, at least 4 needed"),
    ("t0.jpg,1 2 900 4 5 6 7 8\nt1.jpg,\nt2.jpg,\n", "coordinates far outside the 200x100 image"),
    ("t0.jpg,1,2\nt1.jpg,\nt2.jpg,\n", "expected 2 columns, got 3"),
])
def test_validator_catches_each_defect(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "sub.csv"
    path.write_text("filename,polygons\n" + body)
    problems = [str(p) for p in check_submission(path, TEST_IMAGES)]
    assert any(message in p for p in problems), problems


def test_validator_header_too_many_polygons_and_command_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("image,polygons\nt0.jpg,\n")
    assert "header must be filename,polygons" in str(check_submission(bad, TEST_IMAGES)[0])
    many = tmp_path / "many.csv"
    many.write_text("filename,polygons\nt0.jpg," + "|".join(["1 1 5 1 5 5 1 5"] * 501) + "\nt1.jpg,\nt2.jpg,\n")
    assert "501 polygons" in str(check_submission(many, TEST_IMAGES)[0])
    assert not check_submission(many, TEST_IMAGES)[0].fatal  # scored, only the first 500
    test_json = tmp_path / "test.json"
    test_json.write_text(json.dumps(to_json_doc(TEST_IMAGES)))
    run = subprocess.run([sys.executable, "-m", "kit", "submit", "--check", str(many), "--test-json", str(test_json)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0 and "warning: row 2 (t0.jpg): 501 polygons" in run.stdout
    assert "0 problem(s), 1 warning(s)" in run.stdout
    run = subprocess.run([sys.executable, "-m", "kit", "submit", "--check", str(bad), "--test-json", str(test_json)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1 and "1 problem(s), 0 warning(s)" in run.stdout


def test_rows_beyond_the_csv_modules_field_limit(tmp_path: Path) -> None:
    """A real detector's row (hundreds of many-vertex polygons) is longer than csv's default 131,072 characters."""
    circle = np.stack([100 + 90 * np.cos(np.linspace(0, 6.28, 400)), 50 + 45 * np.sin(np.linspace(0, 6.28, 400))], 1)
    preds = [prediction("t0.jpg", [circle] * 60, [0.9] * 60)]
    path = write_submission(preds, [r.name for r in TEST_IMAGES], tmp_path / "sub.csv")
    assert len(path.read_text().splitlines()[1]) > 131_072
    assert check_submission(path, TEST_IMAGES) == []
    assert len(read_submission(path)[0].words) == 60


def test_validator_warns_about_polygons_the_metric_cannot_use(tmp_path: Path) -> None:
    """Accepted by the leaderboard, but each costs false characters: zero area, all points on a line, one point."""
    path = tmp_path / "sub.csv"
    polygons = "1 1 50 1 50 9 1 9|5 5 9 5 9 5 5 5|0 0 10 10 20 20 30 30|4 4 4 4 4 4 4 4"
    path.write_text(f"filename,polygons\nt0.jpg,{polygons}\nt1.jpg,\nt2.jpg,\n")
    problems = check_submission(path, TEST_IMAGES)
    assert len(problems) == 1 and not problems[0].fatal
    assert "3 polygon(s) without area or with collinear points (e.g. polygon 2)" in str(problems[0])


def test_the_csv_from_a_predictions_json_replaces_a_file_only_when_it_passes(tmp_path: Path) -> None:
    test_json = tmp_path / "test.json"
    test_json.write_text(json.dumps(to_json_doc(TEST_IMAGES)))
    good = tmp_path / "pred.json"  # predicted out of order, one image without predictions
    good.write_text(json.dumps(to_json_doc([prediction("t2.jpg", [quad(5, 5)], [0.9]),
                                            prediction("t0.jpg", [quad(50, 50), quad(5, 5)], [0.5, 0.8])])))
    out = tmp_path / "sub.csv"
    out.write_text("an earlier submission")
    run = subprocess.run([sys.executable, "-m", "kit", "submit", str(good), str(out), "--test-json", str(test_json)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert [r.name for r in read_submission(out)] == ["t0.jpg", "t1.jpg", "t2.jpg"] and not check_submission(
        out, TEST_IMAGES)
    written = out.read_bytes()
    bad = tmp_path / "bad.json"  # a polygon far outside its 200 x 100 image: the leaderboard refuses the file
    bad.write_text(json.dumps(to_json_doc([prediction("t0.jpg", [quad(900, 5)], [0.9])])))
    run = subprocess.run([sys.executable, "-m", "kit", "submit", str(bad), str(out), "--test-json", str(test_json)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2 and "not written, the leaderboard would reject it" in run.stderr  # a user error
    assert out.read_bytes() == written and sorted(p.name for p in tmp_path.iterdir()) == [
        "bad.json", "pred.json", "sub.csv", "test.json"]  # the earlier file as it was, no temporary left


@pytest.mark.parametrize(("argv", "message"), [
    (["submit", "p.json", "o.csv", "--check", "o.csv", "--test-json", "t.json"], "not both"),
    (["submit", "p.json", "--test-json", "t.json"], "give PRED.json OUT.csv"),
    (["submit", "p.json", "o.csv", "--images", "."], "needs --test-json"),
    (["predict", "--ckpt", "c.ckpt", "--images", "."], "--out PRED.json, --csv OUT.csv or both"),
])
def test_submission_arguments_are_checked_first(argv: list[str], message: str) -> None:
    run = subprocess.run([sys.executable, "-m", "kit", *argv], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode != 0 and message in run.stderr


@pytest.mark.slow
def test_predict_writes_the_checked_csv_in_the_test_order(tiny_checkpoint: Path, synth_dir: Path,
                                                         tmp_path: Path) -> None:
    test_json = synth_dir / "jsons" / "test.json"
    run = subprocess.run([sys.executable, "-m", "kit", "predict", "--ckpt", str(tiny_checkpoint), "--images",
                          str(synth_dir / "images" / "test"), "--test-json", str(test_json), "--csv",
                          str(tmp_path / "sub.csv"), "--out", str(tmp_path / "pred.json")],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    test_images = read_annotations(test_json)[0]
    assert [r.name for r in read_submission(tmp_path / "sub.csv")] == [r.name for r in test_images]
    assert not [p for p in check_submission(tmp_path / "sub.csv", test_images) if p.fatal]
    assert "passes the leaderboard's checks" in run.stdout and (tmp_path / "pred.json").is_file()
