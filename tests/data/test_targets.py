"""DBNet targets: the fast version equals the per-pixel reference; the rules hold on known shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kit.data.annotations import load_split, read_image
from kit.data.dataset import letterbox
from kit.data.targets import TargetConfig, make_targets
from kit.geometry import offset_distance
from tests.reference import reference_targets

RECT = np.array([[20.0, 30.0], [120.0, 30.0], [120.0, 50.0], [20.0, 50.0]])


def assert_same_targets(fast: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> None:
    """Masks agree on all but a handful of pixels whose centres lie on a boundary; maps to 1e-5."""
    for key in ("gt", "mask", "thresh_mask"):
        differing = int((fast[key] != ref[key]).sum())
        assert differing <= max(2, fast[key].size // 20000), f"{key}: {differing} pixels differ"
    both = (fast["thresh_mask"] == 1) & (ref["thresh_mask"] == 1)
    np.testing.assert_allclose(fast["thresh_map"][both], ref["thresh_map"][both], atol=1e-5)
    np.testing.assert_allclose(fast["thresh_map"], ref["thresh_map"], atol=1e-5)


def test_matches_reference_on_hand_made_shapes() -> None:
    angle = np.deg2rad(25)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rotated = (np.array([[-30, -9], [30, -9], [30, 9], [-30, 9]]) @ rot.T) + [70.3, 95.7]
    theta = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    many_vertices = np.stack([100 + 22 * np.cos(theta), 40 + 14 * np.sin(theta)], 1)
    polygons = [RECT + 0.37, rotated, many_vertices, np.array([[5, 5], [9, 5], [9, 9], [5, 9.0]]),  # tiny
                np.array([[60, 120], [110, 121.5], [109, 139.3], [61, 138]]),  # flagged don't-care below
                np.array([[-10, 100], [30, 100], [30, 125], [-10, 125.0]])]  # out of the image
    dont_care = [False, False, False, False, True, False]
    fast = make_targets(polygons, 150, 140, dont_care)
    assert_same_targets(fast, reference_targets(polygons, 150, 140, dont_care))


def test_matches_reference_on_a_synthetic_receipt(synth_dir: Path) -> None:
    record = load_split(synth_dir, "val")[0][0]
    _, (sx, sy) = letterbox(read_image(record.path), 256)
    polygons = [w.points * [sx, sy] for w in record.words]
    assert_same_targets(make_targets(polygons, 256, 256), reference_targets(polygons, 256, 256))


def test_kernel_and_band_of_a_rectangle() -> None:
    maps = make_targets([RECT], 100, 200)
    assert offset_distance(RECT, 0.4) == pytest.approx(7.0)  # 2000 * 0.84 / 240
    ys, xs = np.nonzero(maps["gt"])
    assert (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) == (27, 113, 37, 43)  # shrunk by 7 px
    ys, xs = np.nonzero(maps["thresh_mask"])
    assert (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) == (13, 127, 23, 57)  # dilated by 7 px
    assert maps["thresh_map"].min() == pytest.approx(0.3) and maps["thresh_map"].max() == pytest.approx(0.7, abs=0.03)
    assert maps["thresh_map"][40, 20] == pytest.approx(0.7, abs=0.03)  # on the border
    assert maps["thresh_map"][40, 70] == pytest.approx(0.3)  # deep inside: 10 px > D from the border
    assert maps["mask"].all()


def test_dont_care_rules() -> None:
    tiny = np.array([[5, 5], [12, 5], [12, 10], [5, 10.0]])  # 5 px high < min_text_size 8
    flat = np.array([[40, 40], [60, 40], [80, 40], [50, 40.0]])  # collinear: offset distance 0
    maps = make_targets([tiny, flat, RECT], 100, 200, [False, False, True])
    assert maps["gt"].sum() == 0
    assert maps["mask"][5:10, 5:12].sum() == 0 and maps["mask"][30:50, 20:120].sum() == 0
    assert maps["mask"].sum() == 100 * 200 - 5 * 7 - 20 * 100
    bigger = make_targets([tiny], 100, 200, config=TargetConfig(min_text_size=4))
    assert bigger["gt"].sum() > 0


def test_vertices_outside_the_image_are_clipped() -> None:
    maps = make_targets([RECT + [-60, 0]], 100, 200)  # x from -40 to 60
    ys, xs = np.nonzero(maps["gt"])
    assert xs.min() >= 0 and maps["gt"][40, 0:10].sum() > 0  # the kernel of the clipped box [0, 60]
