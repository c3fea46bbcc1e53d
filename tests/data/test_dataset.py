"""The data pipeline: exact letterbox inverse, polygons moving with the image as whole units."""

from __future__ import annotations

from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import pytest
import torch

from kit.data.annotations import load_split
from kit.data.dataset import (
    AugConfig,
    TextDetectionDataset,
    build_transform,
    letterbox,
    to_original,
    transform_with_polygons,
)
from kit.data.targets import fill_polygons

NO_NORMALIZE = A.KeypointParams(format="xy", remove_invisible=False)


@pytest.mark.parametrize(("height", "width", "size"), [(1280, 853, 960), (333, 517, 640), (97, 101, 128)])
def test_letterbox_inverse_is_exact(height: int, width: int, size: int) -> None:
    image = np.zeros((height, width, 3), np.uint8)
    image[height // 3: height // 2, width // 4: width // 2] = 255
    canvas, (sx, sy) = letterbox(image, size)
    new_w, new_h = round(width * sx), round(height * sy)
    assert canvas.shape == (size, size, 3) and max(new_w, new_h) == size
    assert canvas[new_h:].sum() == 0 and canvas[:, new_w:].sum() == 0  # padding bottom/right only
    points = np.random.default_rng(0).uniform(0, [width, height], (50, 2))
    (back,) = to_original([points * [sx, sy]], (sx, sy))
    np.testing.assert_allclose(back, points, atol=1e-9)
    ys, xs = np.nonzero(canvas[..., 0] > 127)  # the white block lands where the scale says
    assert xs.min() == pytest.approx(width // 4 * sx, abs=1) and xs.max() + 1 == pytest.approx(width // 2 * sx, abs=1)
    assert ys.min() == pytest.approx(height // 3 * sy, abs=1) and ys.max() + 1 == pytest.approx(height // 2 * sy, abs=1)
    rect, rect_scale = letterbox(image, size, multiple=32)  # inference's: each side padded to a multiple of 32
    assert rect_scale == (sx, sy) and rect.shape[0] % 32 == 0 and rect.shape[1] % 32 == 0
    assert new_h <= rect.shape[0] < new_h + 32 and new_w <= rect.shape[1] < new_w + 32
    np.testing.assert_array_equal(rect, canvas[: rect.shape[0], : rect.shape[1]])


def transformed_mask_iou(transform: A.BasicTransform) -> float:
    """Draw a polygon, transform image and polygon, redraw the moved polygon: overlap with the moved pixels."""
    polygon = np.array([[30.0, 20.0], [90.0, 26.0], [86.0, 50.0], [28.0, 44.0]])
    image = np.zeros((80, 120, 3), np.uint8)
    fill_polygons(image, [polygon], 255)
    moved_image, (moved,) = transform_with_polygons(A.Compose([transform], keypoint_params=NO_NORMALIZE), image,
                                                    [polygon])
    redrawn = np.zeros(moved_image.shape[:2], np.uint8)
    fill_polygons(redrawn, [moved], 1)
    pixels = moved_image[..., 0] > 127
    return (pixels & (redrawn > 0)).sum() / (pixels | (redrawn > 0)).sum()


@pytest.mark.parametrize("transform", [
    A.HorizontalFlip(p=1), A.VerticalFlip(p=1), A.Rotate(limit=(15, 15), p=1, border_mode=cv2.BORDER_CONSTANT),
    A.Rotate(limit=(-90, -90), p=1, border_mode=cv2.BORDER_CONSTANT),
])
def test_polygons_move_with_the_image(transform: A.BasicTransform) -> None:
    assert transformed_mask_iou(transform) > 0.95


def test_flip_is_exact_in_pixel_edge_coordinates() -> None:
    polygon = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 5.0], [0.0, 5.0]])
    flip = A.Compose([A.HorizontalFlip(p=1)], keypoint_params=NO_NORMALIZE)
    _, (moved,) = transform_with_polygons(flip, np.zeros((20, 40, 3), np.uint8), [polygon])
    np.testing.assert_allclose(np.sort(moved[:, 0]), [30, 30, 40, 40])


def test_vertices_out_of_frame_keep_every_polygon_in_order() -> None:
    rng = np.random.default_rng(0)
    polygons = [rng.uniform(0, 64, 2) + [[0, 0], [30, 0], [30, 8], [0, 8]] for _ in range(12)]
    polygons.insert(5, np.array([[60.0, 60.0], [70.0, 60.0], [75.0, 66.0], [70.0, 72.0], [60.0, 72.0]]))
    rotate = A.Compose([A.Rotate(limit=(40, 40), p=1, border_mode=cv2.BORDER_CONSTANT)], keypoint_params=NO_NORMALIZE)
    _, moved = transform_with_polygons(rotate, np.zeros((96, 96, 3), np.uint8), polygons)
    assert [len(p) for p in moved] == [len(p) for p in polygons]
    outside = np.concatenate(moved)
    assert ((outside < 0) | (outside > 96)).any(), "the test needs vertices pushed out of frame"
    # each moved polygon is its own rotation: the same side lengths as before, in the same order
    for before, after in zip(polygons, moved):
        sides = lambda p: np.linalg.norm(np.roll(p, -1, 0) - p, axis=1)  # noqa: E731
        np.testing.assert_allclose(sides(after), sides(before), rtol=1e-4, atol=1e-3)


def test_dataset_items_and_the_single_size_knob(synth_dir: Path) -> None:
    records, _ = load_split(synth_dir, "train")
    dataset = TextDetectionDataset(records, size=640, augment=AugConfig())
    item = dataset[0]
    assert item["image"].shape == (3, 640, 640) and item["image"].dtype == torch.float32
    for key in ("gt", "mask", "thresh_map", "thresh_mask"):
        assert item[key].shape == (1, 640, 640) and torch.isfinite(item[key]).all()
    assert item["gt"].sum() > 0 and item["name"] == records[0].name
    dataset.size = 160
    assert dataset[1]["image"].shape == (3, 160, 160) and dataset[1]["gt"].shape == (1, 160, 160)


def test_evaluation_items_are_deterministic_and_normalised(synth_dir: Path) -> None:
    records, _ = load_split(synth_dir, "val")
    dataset = TextDetectionDataset(records, size=96)
    a, b = dataset[0], dataset[0]
    torch.testing.assert_close(a["image"], b["image"])
    assert -2.2 < a["image"].min() < 0 < a["image"].max() < 2.7  # ImageNet-normalised
    sx, sy = a["scale"].tolist()
    assert max(round(records[0].width * sx), round(records[0].height * sy)) == 96
    assert build_transform(None).transforms[-1].__class__ is A.Normalize
