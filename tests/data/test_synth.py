"""Synthetic receipts: deterministic per seed, and every word polygon tightly covers its glyphs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from kit.data import synth
from kit.data.annotations import load_split
from kit.data.synth import EN_SHARE, MANIFEST, ensure_dataset, generate_dataset, render_receipt, word_language
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


@pytest.mark.parametrize("seed,language", [(0, "ko"), (1, "ko"), (2, "ko"), (3, "en"), (4, "en")])
def test_polygons_tightly_cover_their_glyphs(seed: int, language: str) -> None:
    receipt = render_receipt(np.random.default_rng([seed, 0, 0]), language)
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


def test_word_language_follows_the_text() -> None:
    assert [word_language(t) for t in ("합계", "500ml", "우유1L", "TOTAL", "12,000", "**-****")] == [
        ["ko"], ["en"], ["ko"], ["en"], None, None]


def test_korean_receipts_in_the_competitions_proportions() -> None:
    """Over 60 receipts: Latin words make up EN_SHARE (9.5%) of the words with a language, give or take 2.5
    points; 48-276 words a receipt as on the competition's (their mean: 116; ours ~95); words never overlap."""
    counts = {"ko": 0, "en": 0}
    sizes = []
    for i in range(60):
        receipt = render_receipt(np.random.default_rng([7, 1, i]))
        sizes.append(len(receipt.texts))
        for text in receipt.texts:
            language = word_language(text)
            if language:
                counts[language[0]] += 1
        assert np.bincount(receipt.ink.ravel()).size == len(receipt.texts) + 1  # every word kept its own ink
    share = counts["en"] / (counts["en"] + counts["ko"])
    assert abs(share - EN_SHARE) < 0.025, f"Latin share {share:.3f}"
    assert 48 <= min(sizes) and max(sizes) <= 276 and 80 <= np.mean(sizes) <= 130


def test_every_word_carries_its_language_and_the_manifest_what_made_it(synth_dir: Path, tmp_path: Path) -> None:
    train, _ = load_split(synth_dir, "train")
    assert all(w.extra["language"] == word_language(w.extra["transcription"]) for r in train for w in r.words)
    assert any(w.extra["language"] == ["ko"] for w in train[0].words)
    assert json.loads((synth_dir / MANIFEST).read_text())["language"] == "ko"
    english = generate_dataset(tmp_path / "en", {"val": 1}, workers=1, language="en")
    words = load_split(english, "val")[0][0].words
    assert {tuple(w.extra["language"] or ()) for w in words} <= {("en",), ()}
    with pytest.raises(InputError, match="unknown synthetic receipt language 'jp'; known: en, ko"):
        generate_dataset(tmp_path / "jp", {"val": 1}, language="jp")


def test_an_older_english_set_is_reported_not_reused_or_replaced(tmp_path: Path) -> None:
    old = generate_dataset(tmp_path / "synth", {"val": 1}, workers=1, language="en")
    (old / MANIFEST).write_text(json.dumps({"seed": 0, "counts": {"val": 1}}))  # what kits before Korean wrote
    before = sorted(p.name for p in (old / "images" / "val").iterdir())
    with pytest.raises(InputError, match=r"language': 'en, by an older kit'.*--language ko "
                                         r"--overwrite"):
        ensure_dataset(old, {"val": 1})
    assert sorted(p.name for p in (old / "images" / "val").iterdir()) == before


def test_a_missing_hangul_font_names_its_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synth, "KOREAN_FONT_PACKAGE", "no-such-font-wheel")
    with pytest.raises(InputError, match="pip install no-such-font-wheel.*language en"):
        generate_dataset(tmp_path / "ko", {"val": 1})
    assert not (tmp_path / "ko").exists()
