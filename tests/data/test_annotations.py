"""The data layer: schema errors name file and word, flagged polygons are counted, folds are stable."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from kit.data.annotations import (
    AnnotationError,
    AnnotationWarning,
    check_image_sizes,
    folds_file,
    image_records,
    load_split,
    make_folds,
    read_annotations,
    read_image,
    split_by_fold,
    write_annotations,
)

QUAD = [[10, 10], [50, 10], [50, 30], [10, 30]]


def make_dataset(root: Path, images: dict, split: str = "train", create_images: bool = True) -> Path:
    """A dataset folder with ``images`` as the split's JSON and blank JPEGs of the stated sizes."""
    (root / "jsons").mkdir(parents=True, exist_ok=True)
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "jsons" / f"{split}.json").write_text(json.dumps({"images": images}))
    if create_images:
        for name, entry in images.items():
            white = np.full((entry["img_h"], entry["img_w"], 3), 255, np.uint8)
            cv2.imwrite(str(root / "images" / split / name), white)
    return root


def entry(words: dict, w: int = 100, h: int = 80) -> dict:
    return {"img_w": w, "img_h": h, "words": words}


def test_unreadable_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"images": {')
    with pytest.raises(AnnotationError, match=r"bad\.json: not valid JSON"):
        read_annotations(path)


def test_missing_file_and_missing_images_key(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match="not found"):
        read_annotations(tmp_path / "nope.json")
    path = tmp_path / "x.json"
    path.write_text('{"imgs": {}}')
    with pytest.raises(AnnotationError, match="'images' object"):
        read_annotations(path)


def test_image_missing_on_disk_is_named(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {"a.jpg": entry({}), "b.jpg": entry({})})
    (root / "images" / "train" / "b.jpg").unlink()
    with pytest.raises(AnnotationError, match=r"1 listed images missing .*b\.jpg"):
        load_split(root, "train")


def test_empty_or_corrupt_image_is_named_when_loading(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {"a.jpg": entry({}), "b.jpg": entry({}), "c.jpg": entry({})})
    (root / "images" / "train" / "b.jpg").write_bytes(b"")
    (root / "images" / "train" / "c.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(AnnotationError, match=r"2 listed images .* are empty or not images .*: b\.jpg, c\.jpg"):
        load_split(root, "train")
    with pytest.warns(AnnotationWarning, match=r"2 files are empty or not images and are skipped: b\.jpg, c\.jpg"):
        records = image_records(root / "images" / "train")
    assert [r.name for r in records] == ["a.jpg"]


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([10, 10, 50, 10, 50, 30, 10], "odd number of coordinates"),
        ([[10, 10], [50, "x"], [50, 30], [10, 30]], "non-numeric coordinate 'x'"),
        ([[10, 10], [50, float("nan")], [50, 30], [10, 30]], "non-finite coordinate nan"),
        ([[10, 10], [50, 10, 3], [50, 30], [10, 30]], r"each point must be \[x, y\]"),
        ("10 10 50 10", "'points' must be a list"),
    ],
)
def test_bad_coordinates_name_file_image_and_word(tmp_path: Path, points: list, message: str) -> None:
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"images": {"r.jpg": entry({"0001": {"points": QUAD}, "0007": {"points": points}})}}))
    with pytest.raises(AnnotationError, match=rf"train\.json image 'r\.jpg' word '0007': {message}"):
        read_annotations(path)


def test_bad_image_size_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"images": {"r.jpg": {"img_w": 0, "img_h": 10, "words": {}}}}))
    with pytest.raises(AnnotationError, match="'img_w' must be a positive number"):
        read_annotations(path)


def test_flagged_polygons_are_counted_not_lost(tmp_path: Path) -> None:
    words = {
        "0001": {"points": QUAD, "orientation": "Horizontal", "language": ["ko"], "transcription": "abc"},
        "0002": {"points": [[0, 0], [5, 0], [5, 5]]},  # 3 points: excluded
        "0003": {"points": [[0, 0], [10, 0], [20, 0], [30, 0]]},  # collinear: degenerate
        "0004": {"points": [[-5, 10], [120, 10], [120, 30], [-5, 30]]},  # outside the 100 px wide image
        "0005": {"points": [10, 40, 50, 40, 50, 60, 10, 60]},  # flat list form
    }
    root = make_dataset(tmp_path, {"r.jpg": entry(words)})
    with pytest.warns(AnnotationWarning, match="1 polygons with < 4 points excluded, e.g. r.jpg word 0002"):
        records, report = load_split(root, "train")
    assert [w.id for w in records[0].words] == ["0001", "0003", "0004", "0005"]
    assert report.too_few_points == [("r.jpg", "0002")]
    assert report.degenerate == [("r.jpg", "0003")]
    assert report.outside_image == [("r.jpg", "0004")]
    assert [w.degenerate for w in records[0].words] == [False, True, False, False]
    np.testing.assert_array_equal(records[0].words[2].points[0], [-5, 10])  # kept as given
    np.testing.assert_array_equal(records[0].words[3].points, [[10, 40], [50, 40], [50, 60], [10, 60]])
    assert records[0].words[0].extra == {"orientation": "Horizontal", "language": ["ko"], "transcription": "abc"}


def test_write_then_read_keeps_every_key(tmp_path: Path) -> None:
    images = {"r.jpg": {"img_w": 100, "img_h": 80, "source": "scan",
                        "words": {"0001": {"points": [[1.5, 2.25], [9, 2], [9, 7], [1, 7]], "language": ["ko"]}}}}
    root = make_dataset(tmp_path, images)
    records, _ = load_split(root, "train")
    out = write_annotations(records, tmp_path / "copy.json")
    assert json.loads(out.read_text()) == json.loads((root / "jsons" / "train.json").read_text())


def test_exif_rotation_is_reported_and_pixels_read_as_stored(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {"rot.jpg": entry({}, w=40, h=100), "odd.jpg": entry({}, w=33, h=33),
                                   "ok.jpg": entry({}, w=100, h=40)}, create_images=False)
    folder = root / "images" / "train"
    stored = np.zeros((40, 100, 3), np.uint8)
    stored[:, :50] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when displayed
    for name in ("rot.jpg", "odd.jpg", "ok.jpg"):
        Image.fromarray(stored).save(folder / name, exif=exif)
    records, _ = load_split(root, "train")
    problems = {p["image"]: p for p in check_image_sizes(records)}
    assert problems["rot.jpg"]["status"] == "exif_rotated"
    assert problems["rot.jpg"]["exif_orientation"] == 6
    assert problems["odd.jpg"]["status"] == "mismatch"
    assert "ok.jpg" not in problems
    pixels = read_image(folder / "rot.jpg")
    assert pixels.shape == (40, 100, 3)  # stored frame, not the EXIF-rotated view
    assert pixels[:, :45].mean() > 200 and pixels[:, 55:].mean() < 50


def test_folds_are_seeded_order_free_and_sized_like_the_reports() -> None:
    names = [f"img_{i:05d}.jpg" for i in range(3272)]
    folds = make_folds(names, n_folds=5, seed=42)
    assert folds == make_folds(list(reversed(names)), n_folds=5, seed=42)
    assert folds != make_folds(names, n_folds=5, seed=7)
    sizes = np.bincount(list(folds.values()))
    assert sizes.tolist() == [654, 654, 654, 655, 655]  # fold 0: 2,618 train / 654 held out


def test_folds_file_is_written_once_and_checked(tmp_path: Path) -> None:
    names = [f"{i}.jpg" for i in range(20)]
    path = tmp_path / "folds.json"
    first = folds_file(names, path, n_folds=5, seed=1)
    assert path.is_file()
    assert folds_file(reversed(names), path, n_folds=5, seed=1) == first
    with pytest.raises(ValueError, match="other images or settings"):
        folds_file(names[:-1], path, n_folds=5, seed=1)
    with pytest.raises(ValueError, match="other images or settings"):
        folds_file(names, path, n_folds=4, seed=1)


def test_split_by_fold_partitions(synth_dir: Path) -> None:
    records, _ = load_split(synth_dir, "train")
    folds = make_folds([r.name for r in records], n_folds=3, seed=0)
    for fold in range(3):
        train, held = split_by_fold(records, folds, fold)
        assert {r.name for r in held} == {n for n, f in folds.items() if f == fold}
        assert len(train) + len(held) == len(records)
    with pytest.raises(ValueError, match="have no fold"):
        split_by_fold(records, {}, 0)


def test_sroie_loads_unchanged(sroie_dir: Path) -> None:
    for split, n in (("train", 400), ("val", 100)):
        records, report = load_split(sroie_dir, split)
        assert len(records) == n
        assert report.n_words > 20 * n
        assert not report.too_few_points
    assert check_image_sizes(records) == []
