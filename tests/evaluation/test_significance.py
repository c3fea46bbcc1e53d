"""Paired bootstrap and leaderboard split simulation: properties that hold exactly, coverage, enumeration."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit.cli import main
from kit.evaluation.cleval import evaluate
from kit.evaluation.per_image import per_image_scores
from kit.evaluation.significance import against_baseline, gap_noise, leaderboard_splits, paired_bootstrap, split_masks
from tests.reference import reference_bootstrap


def scores(hmean: np.ndarray, names: list[str] | None = None) -> pd.DataFrame:
    """Per-image scores with P = R = H (enough for the statistics, which treat the three alike)."""
    names = names or [f"img{i:03d}.jpg" for i in range(len(hmean))]
    return pd.DataFrame({"precision": hmean, "recall": hmean, "hmean": hmean}, index=names)


def population(n: int, seed: int, shift: float = 0.004) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two paired sets like two detectors' receipts: most images near 1, a few hard ones, B a bit better."""
    rng = np.random.default_rng(seed)
    a = np.clip(1 - rng.gamma(0.6, 0.06, n), 0, 1)
    b = np.clip(a + rng.normal(shift, 0.03, n), 0, 1)
    return scores(a), scores(b)


def test_identical_sets_give_a_zero_width_interval_around_zero() -> None:
    a, _ = population(50, seed=0)
    result = paired_bootstrap(a, a.copy())
    assert result.diff == result.low == result.high == {"precision": 0.0, "recall": 0.0, "hmean": 0.0}
    assert result.prob_b_better == 0.5 and result.ties == 50 and result.verdict == "within noise"


def test_better_on_every_image_is_better_with_probability_one() -> None:
    a, _ = population(40, seed=1)
    b = a.copy() + 1e-3
    result = paired_bootstrap(a, b, names=("old", "new"))
    assert result.prob_b_better == 1.0 and result.wins_b == 40 and result.wins_a == 0
    assert result.low["hmean"] > 0 and result.verdict == "new is better beyond noise"
    assert result.diff["hmean"] == pytest.approx(1e-3)
    assert paired_bootstrap(b, a).prob_b_better == 0.0


def test_same_seed_same_numbers_and_order_does_not_matter() -> None:
    a, b = population(100, seed=2)
    first = paired_bootstrap(a, b, seed=7)
    again = paired_bootstrap(a.sample(frac=1, random_state=1), b.sample(frac=1, random_state=0), seed=7)
    assert np.array_equal(first.samples, again.samples) and first.low == again.low
    assert not np.array_equal(first.samples, paired_bootstrap(a, b, seed=8).samples)


def test_vectorised_resamples_are_the_one_at_a_time_reference() -> None:
    a, b = population(60, seed=9)
    result = paired_bootstrap(a, b, n_resamples=3000, seed=11)
    reference = reference_bootstrap((b - a).to_numpy(), 3000, seed=11)
    assert np.allclose(result.samples, reference[:, 2], atol=1e-12)


def test_interval_covers_the_true_difference_at_about_the_nominal_rate() -> None:
    """200 validation sets of 100 images drawn from one population with a known difference."""
    rng = np.random.default_rng(3)
    big_a, big_b = population(200_000, seed=4)
    true = float((big_b["hmean"] - big_a["hmean"]).mean())
    covered = 0
    for trial in range(200):
        pick = rng.choice(len(big_a), 100, replace=False)
        result = paired_bootstrap(big_a.iloc[pick], big_b.iloc[pick], n_resamples=2000, seed=trial)
        covered += result.low["hmean"] <= true <= result.high["hmean"]
    assert 0.90 <= covered / 200 <= 0.99, covered


def test_split_simulation_matches_direct_enumeration() -> None:
    a, b = population(8, seed=5, shift=0.01)
    delta = (b["hmean"] - a["hmean"]).to_numpy()
    flips, gaps = [], []
    for public in itertools.combinations(range(8), 4):  # all 70 public halves
        mask = np.isin(np.arange(8), public)
        pub, priv = delta[mask].mean(), delta[~mask].mean()
        flips.append(pub * priv < 0)
        gaps.append(pub - priv)
    simulated = leaderboard_splits(a, b, n_splits=40_000, seed=0)
    assert simulated.n_public == 4
    assert simulated.flip_rate == pytest.approx(np.mean(flips), abs=0.01)
    assert simulated.public_minus_private.std() == pytest.approx(np.std(gaps), rel=0.02)
    assert simulated.public_minus_private.mean() == pytest.approx(0, abs=0.002)


def test_split_masks_are_halves_and_seeded() -> None:
    masks = split_masks(413, 100, seed=1)
    assert (masks.sum(axis=1) == 206).all() and np.array_equal(masks, split_masks(413, 100, seed=1))
    with pytest.raises(ValueError, match="half empty"):
        split_masks(1, 10)


def test_gap_noise_agrees_with_the_simulated_public_private_spread() -> None:
    a, _ = population(413, seed=6)
    noise = gap_noise(a, n_test=413)
    simulated = leaderboard_splits(a, n_splits=20_000).summary()
    assert noise["public_to_private_sd"] == pytest.approx(simulated["public_minus_private_sd"], rel=0.03)
    assert noise["val_to_test_band"] == pytest.approx(1.96 * noise["per_image_sd"] * np.sqrt(2 / 413), rel=1e-3)
    assert np.isnan(gap_noise(a.iloc[:1])["val_to_test_band"])  # one image has no spread


def test_different_images_are_an_error_naming_them() -> None:
    a, b = population(10, seed=7)
    with pytest.raises(ValueError, match="1 only in A, 0 only in B"):
        paired_bootstrap(a, b.iloc[1:])


def test_per_image_scores_read_metric_results_files_and_tables(tmp_path: Path) -> None:
    square = [np.array([[0, 0], [40, 0], [40, 10], [0, 10]], float)]
    result = evaluate({"x.jpg": square, "y.jpg": square}, {"x.jpg": square, "y.jpg": []})
    table = per_image_scores(result)
    assert table.loc["x.jpg", "hmean"] == 1.0 and table.loc["y.jpg", "hmean"] == 0.0
    (tmp_path / "metric.json").write_text(json.dumps({"per_image": {k: {**r.scores(), "counts": {}} for k, r in
                                                                    result.per_image.items()}}))
    table.to_csv(tmp_path / "val_per_image.csv")
    for source in (tmp_path / "metric.json", tmp_path / "val_per_image.csv", result.per_image):
        assert per_image_scores(source).equals(table)
    with pytest.raises(ValueError, match="not per-image scores"):
        (tmp_path / "bad.json").write_text("{}")
        per_image_scores(tmp_path / "bad.json")


def test_against_baseline_compares_every_set_with_the_best() -> None:
    a, b = population(200, seed=8, shift=0.02)
    table = against_baseline({"a": a, "b": b, "a again": a})
    assert table.loc["b", "verdict"] == "baseline"
    assert table.loc["a", "dH"] == pytest.approx(100 * (a["hmean"].mean() - b["hmean"].mean()))
    assert table.loc["a", "verdict"] == "b is better beyond noise" and table.loc["a", "p_better"] < 0.05
    assert 0 <= table.loc["a", "public_flip"] < 0.5
    assert against_baseline({"a": a, "b": b}, baseline="a").loc["b", "p_better"] > 0.95
    assert np.isnan(against_baseline({"a": a.iloc[:1], "b": b.iloc[:1]}).iloc[1]["public_flip"])


def test_compare_command_scores_prediction_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    def doc(boxes: dict[str, list]) -> dict:
        return {"images": {name: {"img_w": 100, "img_h": 100, "words": {f"{i:04d}": {"points": p}
                                                                      for i, p in enumerate(polys)}}
                           for name, polys in boxes.items()}}

    box = [[10, 10], [60, 10], [60, 30], [10, 30]]
    shifted = [[35, 10], [85, 10], [85, 30], [35, 30]]  # half the word missed
    names = [f"r{i}.jpg" for i in range(12)]
    (tmp_path / "gt.json").write_text(json.dumps(doc({n: [box] for n in names})))
    (tmp_path / "exact.json").write_text(json.dumps(doc({n: [box] for n in names})))
    (tmp_path / "shifted.json").write_text(json.dumps(doc({n: [shifted if i % 2 else box] for i, n in
                                                          enumerate(names)})))
    main(["compare", str(tmp_path / "shifted.json"), str(tmp_path / "exact.json"), "--gt", str(tmp_path / "gt.json"),
          "--resamples", "500", "--plot", str(tmp_path / "diff.png")])
    out = capsys.readouterr().out
    assert "exact is better beyond noise" in out and "baseline" in out and (tmp_path / "diff.png").stat().st_size
    with pytest.raises(ValueError, match="at least two"):
        main(["compare", str(tmp_path / "exact.json")])
