"""Notebook 04's candidates and threshold search, the saved choice, and how notebook 05 resolves what to predict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.data.annotations import load_split
from kit.inference.candidates import (
    Choice,
    candidates,
    compare_candidates,
    find_candidate,
    resolve_choice,
    tune_postprocess,
)
from kit.inference.predict import evaluate_predictor
from kit.inference.threshold_search import best_setting
from kit.model.checkpoint import Checkpoint
from kit.paths import ROOT


@pytest.mark.slow
def test_candidates_cover_singles_soup_ensemble_hybrid_and_tta(tiny_checkpoint: Path, tmp_path: Path) -> None:
    choices = candidates([tiny_checkpoint, tiny_checkpoint.parent / "last.ckpt"], hybrid=[tiny_checkpoint],
                         tta="hflip", soup_path=tmp_path / "soup.ckpt")
    names = [c.name for c in choices]
    assert names == [f"single: tiny/{tiny_checkpoint.name}", "single: tiny/last.ckpt", "soup (weight average)",
                     "ensemble (map average)", "hybrid ensemble", "ensemble + TTA (hflip)"]
    assert choices[2].checkpoints == [str(tmp_path / "soup.ckpt")] and Checkpoint.load(tmp_path / "soup.ckpt").soup_of
    assert choices[-1].tta == "hflip" and len(choices[-1].checkpoints) == 2
    assert [c.name for c in candidates([tiny_checkpoint], tta="")] == [f"single: tiny/{tiny_checkpoint.name}"]


@pytest.mark.slow
def test_compare_then_tune_then_save_the_choice(tiny_checkpoint: Path, synth_dir: Path, tmp_path: Path) -> None:
    records = load_split(synth_dir, "val")[0]
    choices = candidates([tiny_checkpoint], tta="hflip")
    table = compare_candidates(choices, records)
    assert table["hmean"].is_monotonic_decreasing and set(table["candidate"]) == {c.name for c in choices}
    assert choices[0].scores["hmean"] == table.set_index("candidate").loc[choices[0].name, "hmean"]
    # every row is compared with the best one on the same images; the best one is the baseline
    assert table.loc[0, "verdict"] == "baseline" and table.loc[1:, "dH"].le(0).all()
    assert table.loc[1:, "dH"].to_numpy() == pytest.approx(100 * (table.loc[1:, "hmean"] - table.loc[0, "hmean"]))
    tuning = tune_postprocess(choices[0], records, [0.45, 0.5], [0.5, 0.55], [2.0], progress=False)
    chosen, search, maps = tuning.choice, tuning.search, tuning.maps
    assert {k: chosen.postprocess[k] for k in ("thresh", "box_thresh", "unclip_ratio")} == best_setting(search)
    assert chosen.scores["hmean"] == search.iloc[0]["hmean"] and len(maps) == len(records)
    # the gain is the searched setting against the checkpoint's own, paired on the same images
    previous = evaluate_predictor(choices[0].predictor(), records, progress=False)["hmean"]
    assert tuning.gain.n_images == len(records)
    assert tuning.gain.diff["hmean"] == pytest.approx(search.iloc[0]["hmean"] - previous, abs=1e-9)
    loaded = Choice.load(chosen.save(tmp_path / "choice.json"))
    assert loaded == chosen
    # the saved choice predicts with the searched settings and scores what the search said
    assert evaluate_predictor(loaded.predictor(), records, progress=False)["hmean"] == pytest.approx(
        search.iloc[0]["hmean"], abs=1e-9)


@pytest.mark.slow
def test_saved_choice_is_portable(tiny_checkpoint: Path, tmp_path: Path) -> None:
    inside = ROOT / "outputs" / "ensemble" / "soup.ckpt"
    saved = Choice("two", [str(inside), str(tiny_checkpoint)]).save(tmp_path / "choice.json")
    assert json.loads(saved.read_text())["checkpoints"] == ["outputs/ensemble/soup.ckpt", str(tiny_checkpoint)]


@pytest.mark.slow
def test_resolve_choice_prefers_given_checkpoints_and_applies_overrides(tiny_checkpoint: Path, tmp_path: Path) -> None:
    saved = Choice("ensemble", [str(tiny_checkpoint)] * 2, [0.3, 0.7], "hflip", {"thresh": 0.4, "box_thresh": 0.6})
    path = saved.save(tmp_path / "choice.json")
    assert resolve_choice(path) == saved
    overridden = resolve_choice(path, tta="", box_thresh=0.5)
    assert overridden.tta == "" and overridden.postprocess["box_thresh"] == 0.5 and overridden.weights == [0.3, 0.7]
    assert overridden.postprocess["thresh"] == 0.4
    given = resolve_choice(path, [str(tiny_checkpoint)], thresh=0.2)
    assert given.checkpoints == [str(tiny_checkpoint)] and given.tta == "" and given.weights is None
    assert given.postprocess == {**Checkpoint.load(tiny_checkpoint).postprocess.to_dict(), "thresh": 0.2}
    with pytest.raises(FileNotFoundError, match="run notebook 04 first, or give checkpoints"):
        resolve_choice(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="bad.json: not a choice"):
        resolve_choice(tmp_path / "bad.json")


@pytest.mark.slow
def test_a_choice_keeps_its_backend_and_older_files_run_on_the_default(tiny_checkpoint: Path, tmp_path: Path) -> None:
    on_ort = candidates([tiny_checkpoint, tiny_checkpoint.parent / "last.ckpt"], backend="onnxruntime")
    assert {c.backend for c in on_ort} == {"onnxruntime"}
    assert all(type(m).__name__ == "OnnxModel" for m in on_ort[-1].predictor().models)
    saved = json.loads(on_ort[0].save(tmp_path / "choice.json").read_text())
    assert saved["backend"] == "onnxruntime"
    del saved["backend"]  # a choice.json written before backends existed
    (tmp_path / "old.json").write_text(json.dumps(saved))
    assert resolve_choice(tmp_path / "old.json").backend == "auto"
    assert resolve_choice(tmp_path / "old.json", backend="torch").backend == "torch"


@pytest.mark.slow
def test_a_baseline_is_found_by_part_of_its_name(tiny_checkpoint: Path) -> None:
    choices = candidates([tiny_checkpoint, tiny_checkpoint.parent / "last.ckpt"], tta="")
    assert find_candidate(choices, "last.ckpt").name == "single: tiny/last.ckpt"
    assert find_candidate(choices, "ensemble (map average)") is choices[-1]
    with pytest.raises(ValueError, match=r"2 candidates named like 'single'"):
        find_candidate(choices, "single")
    with pytest.raises(ValueError, match=r"no candidate named like 'zero-shot'; candidates: \['single: tiny/"):
        find_candidate(choices, "zero-shot")
