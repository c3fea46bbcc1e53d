"""Drawing polygons on images and small figure helpers shared by the notebooks."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from kit.data.annotations import ImageRecord, read_image
from kit.evaluation.significance import PairedComparison

GT_COLOR = (0, 170, 0)
PRED_COLOR = (0, 90, 255)


def draw_polygons(image: np.ndarray, polygons: Iterable[np.ndarray], color: tuple[int, int, int] = GT_COLOR,
                  thickness: int = 2) -> np.ndarray:
    """A copy of ``image`` (RGB) with ``polygons`` outlined; coordinates are rounded to pixels."""
    out = image.copy()
    pts = [np.round(np.asarray(p)).astype(np.int32).reshape(-1, 1, 2) for p in polygons]
    cv2.polylines(out, pts, isClosed=True, color=color, thickness=thickness, lineType=cv2.LINE_AA)
    return out


def show_samples(records: Sequence[ImageRecord], n: int = 4, cols: int = 4, seed: int = 0) -> plt.Figure:
    """A grid of ``n`` images (seeded choice) with their annotated polygons."""
    n = min(n, len(records))
    chosen = np.random.default_rng(seed).choice(len(records), size=n, replace=False) if n else []
    cols = max(1, min(cols, n))
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, chosen):
        r = records[int(i)]
        thickness = max(1, round(max(r.width, r.height) / 600))
        ax.imshow(draw_polygons(read_image(r.path), r.polygons(), thickness=thickness))
        ax.set_title(f"{r.name} ({len(r.words)} words)", fontsize=9)
    fig.tight_layout()
    return fig


def show_overlays(records: Sequence[ImageRecord], predictions: dict[str, list[np.ndarray]],
                  n: int = 2) -> plt.Figure:
    """The first ``n`` records with their GT (green, if any) and ``predictions`` (blue)."""
    chosen = list(records)[:n]
    fig, axes = plt.subplots(1, max(1, len(chosen)), figsize=(7 * max(1, len(chosen)), 9), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, record in zip(axes.flat, chosen):
        image = read_image(record.path)
        predicted = predictions.get(record.name, [])
        thickness = max(1, round(max(image.shape[:2]) / 600))
        drawn = draw_polygons(draw_polygons(image, record.polygons(), GT_COLOR, thickness), predicted, PRED_COLOR,
                              thickness)
        ax.imshow(drawn)
        ax.set_title(f"{record.name}: {len(record.words)} GT (green), {len(predicted)} predicted (blue)", fontsize=9)
    fig.tight_layout()
    return fig


def show_predictions(checkpoint: str | Path, records: Sequence[ImageRecord], n: int = 2) -> plt.Figure:
    """The first ``n`` records with GT and one checkpoint's predictions at its own settings."""
    from kit.inference.predict import Predictor  # deferred: torch and the model stack, for notebooks that only plot

    predictor = Predictor.load([checkpoint], device="cpu")
    chosen = list(records)[:n]
    return show_overlays(chosen, {r.name: predictor.predict(read_image(r.path))[0] for r in chosen}, n)


def unit_axis(ax: plt.Axes, which: str) -> None:
    """Clamp the ``x`` or ``y`` axis of a score plot to [0, 1]: scores never leave it, and autoscaling around a
    constant score (all zero, all one) would otherwise show negative or above-one ticks."""
    low, high = ax.get_xlim() if which == "x" else ax.get_ylim()
    low, high = max(0.0, low), min(1.0, high)
    if high - low < 0.05:  # a constant score: show a readable window inside [0, 1] around it
        low, high = max(0.0, min(low, 0.95)), min(1.0, max(high, 0.05))
    (ax.set_xlim if which == "x" else ax.set_ylim)(low, high)


def plot_pr_curve(curve: pd.DataFrame, point: tuple[float, float], point_label: str,
                  title: str | None = None, min_gap: float = 0.04) -> plt.Figure:
    """Precision against recall over ``box_thresh`` (one row per setting: ``recall``, ``precision``, ``box_thresh``)
    with the chosen ``point`` (recall, precision) in red: notebooks 03 and 04 both draw it.

    A setting's label is written only where it keeps ``min_gap`` (a fraction of the axes) from every label
    already written and from the point, so crowded settings do not print on top of each other; the skipped
    ones keep their marker.
    """
    curve = curve.sort_values("box_thresh")
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.plot(curve["recall"], curve["precision"], marker="o")
    ax.scatter([point[0]], [point[1]], color="red", zorder=3, label=point_label)
    unit_axis(ax, "x")
    unit_axis(ax, "y")
    to_axes = ax.transLimits  # data -> axes fraction, after the limits are set
    placed = [np.asarray(to_axes.transform(point))]
    for _, row in curve.iterrows():
        xy = np.asarray(to_axes.transform((row["recall"], row["precision"])))
        if all(np.hypot(*(xy - other)) >= min_gap for other in placed):
            ax.annotate(f"{row['box_thresh']:.2f}", (row["recall"], row["precision"]), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")
            placed.append(xy)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    if title:
        ax.set_title(title)
    ax.legend()
    return fig


#: Colours of the error gallery (RGB).
ERROR_COLORS = {"matched": (0, 170, 0), "missed": (230, 0, 0), "split": (200, 0, 200), "merged": (0, 170, 220),
                "false_positive": (255, 140, 0)}


def show_errors(records: Sequence[ImageRecord], predictions: dict[str, list[np.ndarray]],
                statuses: dict[str, list[str]], false_positives: dict[str, list[int]], n: int = 4,
                cols: int = 2) -> plt.Figure:
    """A gallery: GT by status (matched green, missed red, split magenta, merged cyan), false positives orange."""
    chosen = list(records)[:n]
    cols = max(1, min(cols, len(chosen)))
    rows = max(1, -(-len(chosen) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(8 * cols, 10 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, record in zip(axes.flat, chosen):
        image = read_image(record.path)
        thickness = max(1, round(max(image.shape[:2]) / 500))
        for status, color in ERROR_COLORS.items():
            if status == "false_positive":
                polys = [predictions[record.name][d] for d in false_positives.get(record.name, [])]
            else:
                polys = [w.points for w, s in zip(record.words, statuses[record.name]) if s == status]
            image = draw_polygons(image, polys, color, thickness)
        counts = {s: statuses[record.name].count(s) for s in ("missed", "split", "merged")}
        ax.imshow(image)
        ax.set_title(f"{record.name}: missed {counts['missed']}, split {counts['split']}, merged {counts['merged']}, "
                     f"false positives {len(false_positives.get(record.name, []))}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_paired(comparison: PairedComparison, top: int = 40) -> plt.Figure:
    """Two panels read at a glance: the bootstrap distribution of B - A's H-mean with zero and the interval
    marked, and the per-image differences sorted (the ``top`` largest in size, which decide it)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [1, 1.4]})
    samples = 100 * comparison.samples
    left.hist(samples, bins=60, color="tab:blue", alpha=0.8)
    left.axvline(0, color="black", linewidth=1.5, label="no difference")
    left.axvline(100 * comparison.diff["hmean"], color="tab:red", label="observed difference")
    for k, bound in enumerate((comparison.low["hmean"], comparison.high["hmean"])):
        left.axvline(100 * bound, color="tab:red", linestyle="--",
                     label=None if k else f"{int(round(100 * comparison.confidence))}% interval")
    left.set_xlabel(f"H-mean {comparison.b} - {comparison.a} (points)")
    left.set_ylabel("resamples")
    left.set_title(f"P({comparison.b} better) = {comparison.prob_b_better:.3f}: {comparison.verdict}", fontsize=10)
    left.legend(fontsize=8)
    per_image = 100 * comparison.per_image
    shown = per_image.reindex(per_image.abs().sort_values(ascending=False).index[:top]).sort_values()
    colors = ["tab:green" if v > 0 else "tab:red" for v in shown]
    right.bar(range(len(shown)), shown.to_numpy(), color=colors)
    right.axhline(0, color="black", linewidth=1)
    right.set_xticks(range(len(shown)), shown.index, rotation=90, fontsize=6)
    right.set_ylabel("per-image H-mean difference (points)")
    right.set_title(f"the {len(shown)} images that move it most ({comparison.wins_b} won, {comparison.wins_a} lost, "
                    f"{comparison.ties} tied of {comparison.n_images})", fontsize=10)
    fig.tight_layout()
    return fig
