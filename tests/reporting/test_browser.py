"""Notebook 03's error browser, driven from Python as a person's clicks would drive it (the browser test in
tests/integration/test_jupyterlab.py shows it rendering in JupyterLab)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kit.data.annotations import ImageRecord, Word
from kit.evaluation.cleval import evaluate
from kit.reporting.browser import FOCUS_COLOR, LAYERS, ErrorBrowser, image_order, render, report_html, word_report, zoom
from kit.reporting.error_analysis import ErrorAnalysis
from kit.reporting.viz import ERROR_COLORS, PRED_COLOR
from tests.reporting.test_error_analysis import GT, PRED, box


@pytest.fixture
def found(tmp_path: Path) -> ErrorAnalysis:
    """Two pages: the hand-made page of every error kind (H < 1) and a perfect one."""
    records, predictions = [], {}
    for name, gt, pred in (("perfect.png", GT[:1], GT[:1]), ("errors.png", GT, PRED)):
        cv2.imwrite(str(tmp_path / name), np.full((400, 400, 3), 255, np.uint8))
        words = [Word(f"{i:04d}", p, extra={"transcription": f"w{i}", "language": ["ko"]}) for i, p in enumerate(gt)]
        records.append(ImageRecord(name, tmp_path / name, 400, 400, words))
        predictions[name] = pred
    result = evaluate({r.name: r.polygons() for r in records}, predictions)
    return ErrorAnalysis(records, predictions, result)


PALETTE = {**ERROR_COLORS, "predicted": PRED_COLOR, "focus": FOCUS_COLOR, "paper": (255, 255, 255)}


def colour_at(image: np.ndarray, polygon: np.ndarray) -> str:
    """The palette colour nearest the pixel in the middle of the polygon's first edge (lines are anti-aliased)."""
    x, y = np.round(np.asarray(polygon, float)[:2].mean(0)).astype(int)
    return min(PALETTE, key=lambda name: float(np.abs(np.subtract(PALETTE[name], image[y, x], dtype=float)).sum()))


def test_orders_put_the_worst_image_first(found: ErrorAnalysis) -> None:
    assert image_order(found) == ["errors.png", "perfect.png"]
    assert image_order(found, "best H-mean first") == ["perfect.png", "errors.png"]
    assert image_order(found, "name") == ["errors.png", "perfect.png"]
    with pytest.raises(ValueError, match="unknown order 'random'; known: worst H-mean first"):
        image_order(found, "random")


def test_layers_draw_each_status_in_its_colour(found: ErrorAnalysis) -> None:
    record, result = found.records[1], found.result.per_image["errors.png"]
    everything = render(record, result, PRED, set(LAYERS) - {"predicted"})
    assert [colour_at(everything, GT[g]) for g in (0, 1, 2, 4)] == ["matched", "split", "merged", "missed"]
    assert colour_at(everything, PRED[4]) == "false_positive"
    only_missed = render(record, result, PRED, {"missed"})
    assert (colour_at(only_missed, GT[0]), colour_at(only_missed, GT[4])) == ("paper", "missed")
    assert colour_at(render(record, result, PRED, {"predicted"}), PRED[4]) == "predicted"
    focused = render(record, result, PRED, set(), focus=1)  # the split word and both its detections
    assert [colour_at(focused, p) for p in (GT[1], PRED[1], PRED[2], PRED[4])] == ["focus"] * 3 + ["paper"]


def test_word_report_says_which_detection_took_the_word(found: ErrorAnalysis) -> None:
    record, result = found.records[1], found.result.per_image["errors.png"]
    split = word_report(record, result, 1)
    assert (split["status"], split["transcription"], split["pseudo_characters"]) == ("split", "w1", 5)
    assert split["detections"][["detection", "area_precision", "matched"]].values.tolist() == [[1, 1.0, True],
                                                                                              [2, 1.0, True]]
    merged = word_report(record, result, 2)
    assert merged["status"] == "merged" and merged["detections"]["other_words"].tolist() == [[3]]
    missed = word_report(record, result, 4)
    assert missed["status"] == "missed" and missed["characters_found"] == 0 and not len(missed["detections"])
    assert "no detection holds any of its character centres" in report_html(missed)
    assert "<td>0.500</td>" not in report_html(merged) and "area_precision" in report_html(merged)


def test_zoom_frames_the_word() -> None:
    image = np.zeros((400, 400, 3), np.uint8)
    crop = zoom(image, box(10, 150, 110, 170), size=300)
    assert max(crop.shape[:2]) == 300  # 100 x 20 word with 60 px each side, clipped at the left edge


def test_the_browser_pages_toggles_and_explains(found: ErrorAnalysis) -> None:
    browser = ErrorBrowser(found)
    assert browser.name == "errors.png" and "1 / 2: errors.png" in browser.title.value
    first = browser.picture.value
    assert first[:2] == b"\xff\xd8" and browser.zoomed.value == b""  # a JPEG
    browser.layers["missed"].value = False
    assert browser.picture.value != first
    browser.word.value = 1
    assert browser.zoomed.value[:4] == b"\x89PNG" and "status <b>split</b>" in browser.details.value
    browser.next.click()
    assert browser.name == "perfect.png" and browser.word.value is None and len(browser.word.options) == 2
    browser.next.click()  # already the last image: stays
    assert browser.slider.value == 1
    browser.order.value = "best H-mean first"  # the image shown stays shown
    assert browser.name == "perfect.png" and browser.slider.value == 0
    browser.previous.click()
    assert browser.name == "perfect.png"
    text = browser.widget._repr_mimebundle_()["text/plain"]
    assert "open this notebook in JupyterLab" in text
