"""Synthetic receipts: deterministic per seed, and every word polygon tightly covers its glyphs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from kit.data.annotations import load_split
from kit.data.synth import MANIFEST, ensure_dataset, generate_dataset, render_receipt
from kit.errors import InputError
from tests.conftest import TINY_COUNTS


def test_same_seed_same_files(synth_dir: Path, tmp_path: Path) -> None:
    again = generate_dataset(tmp_path / "again", TINY_COUNTS, seed=0, workers=1)
    for split in TINY_COUNTS:
        assert json.loads((again / "jsons" / f"{split}.json").read_text()) == \
            json.loads((synth_dir / "jsons" / f"{split}.json").read_text())
        for image in sorted((synth_dir / "images" / split).iterdir()):
            assert (again / "images" / split / image.name).read_bytes() == image.read_bytes()
    other = generate_dataset(tmp_path / "other", {"val": 1}, seed=1, workers=1)
    other_words = json.loads((other / "jsons" / "val.json").read_text())["images"]["synth_val_0000.jpg"]
    same_words = json.loads((synth_dir / "jsons" / "val.json").read_text())["images"]["synth_val_0000.jpg"]
    assert other_words != same_words


def test_layout_loads_cleanly(synth_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train, report = load_split(synth_dir, "train")
        test, _ = load_split(synth_dir, "test")
    assert len(train) == TINY_COUNTS["train"] and report.n_words > 30 * len(train)
    assert all(not r.words for r in test)
    assert all(max(r.width, r.height) <= 1280 for r in train)
    word = train[0].words[0]
    assert word.extra["orientation"] == "Horizontal" and word.extra["transcription"]


def _edge_distances(points: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """(n_points, 4) signed distances of points to the quad's edges, positive inside (clockwise quad)."""
    a, b = quad, np.roll(quad, -1, axis=0)
    edge = b - a
    normal = np.stack([-edge[:, 1], edge[:, 0]], axis=1) / np.linalg.norm(edge, axis=1, keepdims=True)
    return np.einsum("pkj,kj->pk", points[:, None, :] - a[None], normal)


@pytest.mark.parametrize("seed", range(4))
def test_polygons_tightly_cover_their_glyphs(seed: int) -> None:
    receipt = render_receipt(np.random.default_rng([seed, 0, 0]))
    assert len(receipt.texts) == len(receipt.quads) > 20
    gaps = []
    for k, quad in enumerate(receipt.quads):
        ys, xs = np.nonzero(receipt.ink == k + 1)
        assert len(xs), f"word {k} ({receipt.texts[k]!r}) has no ink"
        centres = np.stack([xs + 0.5, ys + 0.5], axis=1)
        dist = _edge_distances(centres, quad)
        assert dist.min() > -1.0, f"word {k}: ink {-dist.min():.2f} px outside its polygon"
        gaps.extend(dist.min(axis=0))
        # Nearest-neighbour warping of the ink labels can drop a 1 px stroke when the receipt is
        # scaled down, so one edge may sit up to ~2.5 px from the *labelled* ink; typical edges touch it.
        assert (dist.min(axis=0) < 3.0).all(), f"word {k}: an edge is {dist.min(axis=0).max():.2f} px from any ink"
    assert np.median(gaps) < 0.8


def test_a_dataset_folder_is_never_regenerated_or_overwritten(tmp_path: Path) -> None:
    small = {"val": 1}
    made = ensure_dataset(tmp_path / "synth", small)  # missing: generated
    manifest = (made / MANIFEST).read_text()
    assert ensure_dataset(made, small) == made and (made / MANIFEST).read_text() == manifest
    with pytest.raises(InputError, match=r"holds a synthetic set made with .* kit synth --out .* --overwrite"):
        ensure_dataset(made, {"val": 2})  # stale: reported, not rebuilt
    assert len(list((made / "images" / "val").iterdir())) == 1
    mine = tmp_path / "mine"
    (mine / "images").mkdir(parents=True)
    (mine / "images" / "photo.jpg").write_bytes(b"a user's file")
    with pytest.raises(InputError, match="files but no"):
        ensure_dataset(mine, small)
    with pytest.raises(FileExistsError, match="does not write into it"):
        generate_dataset(made, small, workers=1)
    with pytest.raises(FileExistsError, match="not a synthetic set made by the kit"):
        generate_dataset(mine, small, workers=1, overwrite=True)
    assert (mine / "images" / "photo.jpg").read_bytes() == b"a user's file"
    generate_dataset(made, {"val": 2}, workers=1, overwrite=True)
    assert len(list((made / "images" / "val").iterdir())) == 2
