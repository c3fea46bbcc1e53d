"""Notebook 03's interactive error browser: every scored image, worst first, with layer toggles and one word's
CLEval match.

The drawing (:func:`render`) and the word's report (:func:`word_report`) are plain functions of an
:class:`~kit.reporting.error_analysis.ErrorAnalysis`, tested without a browser; :class:`ErrorBrowser` only wires
them to ipywidgets. Under papermill (no one to click) the widget's text form says so, and the notebook's static
galleries carry the pictures.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import cv2
import ipywidgets as widgets
import numpy as np
import pandas as pd

from kit.data.annotations import ImageRecord, read_image
from kit.evaluation.cleval import ImageResult
from kit.reporting.error_analysis import ErrorAnalysis, gt_status, per_image_table
from kit.reporting.viz import ERROR_COLORS, PRED_COLOR, draw_polygons

#: The layers a person can switch on and off: GT words by status, unmatched detections, every detection.
LAYERS = ("matched", "missed", "split", "merged", "false_positive", "predicted")
#: The image orders offered, as (label, per-image table column, ascending).
ORDERS = {"worst H-mean first": ("hmean", True), "best H-mean first": ("hmean", False),
          "most missed first": ("missed", False), "most false positives first": ("false_positives", False),
          "name": ("image", True)}
#: Colour of the word picked in the word list (RGB).
FOCUS_COLOR = (255, 220, 0)
#: The zoomed view's margin around the picked word, in word heights.
ZOOM_MARGIN = 3.0


def image_order(found: ErrorAnalysis, order: str = "worst H-mean first") -> list[str]:
    """Image names in one of :data:`ORDERS`; ties keep the split's order."""
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; known: {', '.join(ORDERS)}")
    column, ascending = ORDERS[order]
    table = per_image_table(found.result, found.records)
    return table.sort_values(column, ascending=ascending, kind="stable")["image"].tolist()


def render(record: ImageRecord, result: ImageResult, predictions: list[np.ndarray], layers: set[str],
           focus: int | None = None, image: np.ndarray | None = None) -> np.ndarray:
    """``record``'s image with the chosen :data:`LAYERS` drawn (colours of the static gallery; every detection
    blue), and word ``focus`` and the detections linked to it outlined in yellow, thicker."""
    image = read_image(record.path) if image is None else image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 500))
    statuses = gt_status(result, len(record.words))
    if "predicted" in layers:
        image = draw_polygons(image, predictions, PRED_COLOR, thickness)
    for status in ("matched", "missed", "split", "merged"):
        if status in layers:
            image = draw_polygons(image, [w.points for w, s in zip(record.words, statuses) if s == status],
                                  ERROR_COLORS[status], thickness)
    if "false_positive" in layers:
        image = draw_polygons(image, [predictions[d] for d in result.false_positives],
                              ERROR_COLORS["false_positive"], thickness)
    if focus is not None:
        linked = [predictions[d] for d, *_ in result.word_links.get(focus, [])]
        image = draw_polygons(image, [record.words[focus].points, *linked], FOCUS_COLOR, 2 * thickness)
    return image


def zoom(image: np.ndarray, points: np.ndarray, size: int = 360) -> np.ndarray:
    """The region around a word (``ZOOM_MARGIN`` word heights each side), scaled so its long side is ``size``."""
    points = np.asarray(points, float)
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    pad = ZOOM_MARGIN * max(y1 - y0, 4.0)
    h, w = image.shape[:2]
    left, top = int(max(0, x0 - pad)), int(max(0, y0 - pad))
    right, bottom = int(min(w, np.ceil(x1 + pad))), int(min(h, np.ceil(y1 + pad)))
    crop = image[top:max(bottom, top + 1), left:max(right, left + 1)]
    scale = size / max(crop.shape[:2])
    return cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST if scale > 1 else cv2.INTER_AREA)


def word_report(record: ImageRecord, result: ImageResult, word: int) -> dict[str, Any]:
    """What CLEval made of GT word ``word``: its status, pseudo-characters (counted, found) and every detection
    holding one of its character centres, with the area precision that decides a match (>= 0.3)."""
    skipped = dict(result.skipped_gt)
    kept = [g for g in range(len(record.words)) if g not in skipped]
    chars = dict(zip(kept, result.gt_chars))
    found = dict(zip(kept, result.gt_chars_found))
    links = pd.DataFrame(result.word_links.get(word, []),
                         columns=["detection", "area_precision", "centres_inside", "matched"])
    if len(links):  # which other GT words each linked detection also holds: a merge shows here
        shared = {d: sorted(g for g, ls in result.word_links.items() if g != word and any(x[0] == d for x in ls))
                  for d in links["detection"]}
        links["other_words"] = [shared[d] for d in links["detection"]]
    extra = record.words[word].extra
    return {"image": record.name, "word": word, "id": record.words[word].id,
            "transcription": extra.get("transcription"), "language": extra.get("language"),
            "status": "skipped" if word in skipped else gt_status(result, len(record.words))[word],
            "skipped_because": skipped.get(word), "pseudo_characters": chars.get(word, 0),
            "characters_found": found.get(word, 0), "detections": links}


def report_html(report: dict[str, Any]) -> str:
    """:func:`word_report` as the browser's HTML panel."""
    head = (f"<b>{report['image']}</b>, word {report['word']} (id {report['id']}): "
            f"<code>{report['transcription'] or ''}</code> [{', '.join(report['language'] or []) or '-'}]<br>"
            f"status <b>{report['status']}</b>{f' ({why})' if (why := report['skipped_because']) else ''}"
            f", pseudo-characters found {report['characters_found']} of {report['pseudo_characters']}")
    links = report["detections"]
    if not len(links):
        return head + "<br>no detection holds any of its character centres"
    shown = links.assign(other_words=[_few(words) for words in links["other_words"]])
    return head + shown.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0)


def _few(words: list[int], limit: int = 6) -> str:
    """A list of word indices short enough for the panel: a detection over a whole receipt holds hundreds."""
    return ", ".join(map(str, words[:limit])) + (f" (+{len(words) - limit} more)" if len(words) > limit else "")


class _Browser(widgets.VBox):
    """A VBox whose text form (what papermill stores and prints) says where the pictures are."""

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle["text/plain"] = ("Error browser: open this notebook in JupyterLab to page through the images; "
                                    "the static galleries below show the worst ones.")
        return bundle


class ErrorBrowser:
    """Every image of ``found``, in a chosen order, with layer toggles, a slider (arrow keys once focused) and
    previous / next buttons, and a word picker whose word is outlined, zoomed and explained (:func:`word_report`)."""

    def __init__(self, found: ErrorAnalysis, order: str = "worst H-mean first", width: int = 520):
        self.found = found
        self.by_name = {r.name: r for r in found.records}
        self.names = image_order(found, order)
        self.order = widgets.Dropdown(options=list(ORDERS), value=order, description="order")
        self.slider = widgets.IntSlider(value=0, min=0, max=max(0, len(self.names) - 1), description="image",
                                        continuous_update=False)
        self.previous, self.next = widgets.Button(description="previous"), widgets.Button(description="next")
        self.layers = {name: widgets.Checkbox(value=name != "predicted", description=name.replace("_", " "),
                                              indent=False, layout=widgets.Layout(width="130px"))
                       for name in LAYERS}
        self.word = widgets.Dropdown(description="word", options=[("(none)", None)])
        self.title = widgets.HTML()
        self.picture = widgets.Image(format="jpeg", layout=widgets.Layout(width=f"{width}px"))
        self.zoomed = widgets.Image(format="png", layout=widgets.Layout(width="360px"))
        self.details = widgets.HTML()
        self.order.observe(self._reorder, "value")
        self.slider.observe(self._new_image, "value")
        self.word.observe(self._redraw, "value")
        for box in self.layers.values():
            box.observe(self._redraw, "value")
        self.previous.on_click(lambda _: self._step(-1))
        self.next.on_click(lambda _: self._step(1))
        self.widget = _Browser([
            widgets.HBox([self.order, self.slider, self.previous, self.next]),
            widgets.HBox(list(self.layers.values())), self.title,
            widgets.HBox([self.picture, widgets.VBox([self.word, self.zoomed, self.details])]),
        ])
        self._new_image()

    @property
    def name(self) -> str:
        return self.names[self.slider.value]

    def _step(self, delta: int) -> None:
        self.slider.value = int(np.clip(self.slider.value + delta, self.slider.min, self.slider.max))

    def _reorder(self, _: Any = None) -> None:
        current = self.name
        self.names = image_order(self.found, self.order.value)
        index = self.names.index(current)
        if index == self.slider.value:
            self._new_image()
        self.slider.value = index

    def _new_image(self, _: Any = None) -> None:
        record, result = self.by_name[self.name], self.found.result.per_image[self.name]
        statuses = gt_status(result, len(record.words))
        self.word.options = [("(none)", None)] + [
            (f"{g}: {w.extra.get('transcription') or w.id} ({s})", g) for g, (w, s) in enumerate(zip(record.words,
                                                                                                     statuses))]
        self.word.value = None
        self.title.value = (f"<b>{self.slider.value + 1} / {len(self.names)}: {self.name}</b> - H {result.hmean:.4f} "
                            f"(P {result.precision:.4f}, R {result.recall:.4f}); missed {len(result.missed)}, "
                            f"split {len(result.split)}, merged {len(result.merged)}, false positives "
                            f"{len(result.false_positives)}")
        self._redraw()

    def _redraw(self, _: Any = None) -> None:
        record, result = self.by_name[self.name], self.found.result.per_image[self.name]
        layers = {name for name, box in self.layers.items() if box.value}
        drawn = render(record, result, self.found.predictions.get(self.name, []), layers, self.word.value,
                       _image(str(record.path)))
        self.picture.value = _encode(drawn, ".jpg")
        if self.word.value is None:
            self.zoomed.value, self.details.value = b"", "pick a word to see its CLEval match"
            return
        self.zoomed.value = _encode(zoom(drawn, record.words[self.word.value].points), ".png")
        self.details.value = report_html(word_report(record, result, self.word.value))


@lru_cache(maxsize=8)
def _image(path: str) -> np.ndarray:
    return read_image(path)


def _encode(image: np.ndarray, kind: str) -> bytes:
    """The whole receipt as JPEG (a tenth of the PNG: it travels to the browser on every click, and papermill
    stores it in the executed notebook's widget state), the zoomed word as PNG (crisp outlines)."""
    ok, data = cv2.imencode(kind, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError(f"{kind} encoding failed")
    return data.tobytes()
