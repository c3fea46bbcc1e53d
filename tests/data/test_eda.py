"""EDA statistics on hand-made records, the synthetic data and SROIE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kit.data import eda
from kit.data.annotations import ImageRecord, Word, load_split


def record(polys: list[list[list[float]]], w: int = 200, h: int = 100) -> ImageRecord:
    words = [Word(f"{i:04d}", np.asarray(p, float)) for i, p in enumerate(polys)]
    return ImageRecord("r.jpg", Path("r.jpg"), w, h, words)


def test_word_geometry_of_known_boxes() -> None:
    horizontal = [[10, 10], [110, 10], [110, 30], [10, 30]]
    vertical = [[150, 10], [150, 90], [130, 90], [130, 10]]  # first edge points down: 90 degrees
    table = eda.word_table([record([horizontal, vertical])])
    h, v = table.iloc[0], table.iloc[1]
    assert (h.width, h.height, h.aspect, h.area, h.angle) == pytest.approx((100, 20, 5, 2000, 0))
    assert (h.cx, h.cy) == pytest.approx((0.3, 0.2))
    assert h.orientation == "Horizontal"
    assert (v.width, v.height, v.angle) == pytest.approx((20, 80, 90))
    assert v.orientation == "Vertical"


def test_heatmap_marks_where_text_lies() -> None:
    box = [[0, 0], [100, 0], [100, 50], [0, 50]]  # the top-left quarter of a 200 x 100 image
    heat = eda.text_heatmap([record([box]), record([])], bins=8)
    assert heat[:3, :3].tolist() == [[0.5] * 3] * 3  # one of the two images has text there
    assert heat[5:, :].sum() == 0 and heat[:, 5:].sum() == 0


def test_tables_on_synthetic_data(synth_dir: Path) -> None:
    records, report = load_split(synth_dir, "train")
    images, words = eda.image_table(records), eda.word_table(records)
    assert images["words"].sum() == len(words) == report.n_words
    assert (words["aspect"].median() > 2) and (words["cx"].between(0, 1).all())
    assert (words["angle"].abs() < 10).all()  # slight rotation only
    summary = eda.split_summary(synth_dir).set_index("split")
    assert summary.loc["train", "images"] == len(records)
    assert summary.loc["test", "words"] == 0


def test_statistics_on_sroie(sroie_dir: Path) -> None:
    summary = eda.split_summary(sroie_dir).set_index("split")
    assert summary["images"].to_dict() == {"train": 400, "val": 100}
    records, _ = load_split(sroie_dir, "val")
    words = eda.word_table(records)
    assert 20 < words.groupby("image").size().median() < 120
    assert words["aspect"].median() > 2  # receipt text lines are wide
    heat = eda.text_heatmap(records)
    assert 0 < heat.max() <= 1
    assert heat[:, :4].mean() < heat[:, 28:36].mean()  # text sits in the middle, not the margins


def test_language_mix_counts_what_the_annotations_give() -> None:
    box = [[0, 0], [10, 0], [10, 5], [0, 5]]
    words = [Word("1", np.asarray(box, float), extra={"language": ["ko"]}) for _ in range(9)]
    words += [Word("2", np.asarray(box, float), extra={"language": ["en"]}),
              Word("3", np.asarray(box, float), extra={"language": None}), Word("4", np.asarray(box, float))]
    mix = eda.language_mix(eda.word_table([ImageRecord("r.jpg", Path("r.jpg"), 20, 20, words)])).set_index("language")
    assert mix["words"].to_dict() == {"ko": 9, eda.NO_LANGUAGE: 2, "en": 1}
    assert mix.loc["ko", "share_of_given"] == pytest.approx(0.9)
    assert np.isnan(mix.loc[eda.NO_LANGUAGE, "share_of_given"])
    assert mix["share"].sum() == pytest.approx(1.0)
