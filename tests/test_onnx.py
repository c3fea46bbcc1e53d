"""ONNX export and the ONNX Runtime backend: the exported graph's maps equal torch's on real receipts at several
sizes, for a timm DBNet and the PP-OCR detector; predictions from either backend score alike."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from kit.data.annotations import load_split, read_image
from kit.errors import InputError
from kit.evaluation.cleval import evaluate
from kit.inference.onnx_backend import METADATA_KEY, OnnxModel, export_bytes, export_onnx, read_metadata
from kit.inference.predict import Predictor, image_tensor
from kit.model.checkpoint import Checkpoint
from kit.model.ppocr import bundled_onnx_path
from kit.paths import ROOT
from kit.training.config import resolve_config
from kit.training.run import zero_shot_checkpoint
from tests.test_ppocr import onnx_runtime_map


def _max_map_difference(checkpoint: Checkpoint, records: list, sizes: tuple[int, ...]) -> float:
    torch_model = checkpoint.build_model("cpu").eval()
    onnx_model = OnnxModel(export_bytes(checkpoint))
    worst = 0.0
    for record in records:
        image = read_image(record.path)
        for size in sizes:
            tensor, _ = image_tensor(image, size, torch_model)
            for batch in (tensor, tensor[..., : size * 3 // 4 - 8, : size // 2 + 8]):  # dynamic height and width
                with torch.no_grad():
                    expected = torch_model(batch)["prob"]
                got = onnx_model(batch)["prob"]
                assert got.shape == expected.shape
                worst = max(worst, float((got - expected).abs().max()))
    return worst


def test_a_dbnet_exports_with_its_settings_and_equal_maps(tiny_checkpoint: Path, synth_dir: Path) -> None:
    checkpoint = Checkpoint.load(tiny_checkpoint)
    records = load_split(synth_dir, "val")[0][:2]
    assert _max_map_difference(checkpoint, records, (320, 640)) < 1e-4
    meta = read_metadata(export_bytes(checkpoint), "export")
    assert meta["eval_size"] == checkpoint.eval_size and meta["postprocess"] == checkpoint.postprocess.to_dict()
    assert tuple(meta["mean"]) == checkpoint.normalisation[0] and meta["arch"] == checkpoint.arch


@pytest.mark.slow
def test_the_ppocr_detector_exports_with_equal_maps(synth_dir: Path) -> None:
    checkpoint = zero_shot_checkpoint(resolve_config("ppocr_synth"))
    records = load_split(synth_dir, "val")[0][:1]
    assert _max_map_difference(checkpoint, records, (640, 960)) < 1e-4


@pytest.mark.slow
def test_the_ppocr_detector_on_sroie_receipts(sroie_dir: Path) -> None:
    """At 960 px within 1e-4 of torch; at 1280 px within 2e-4 (measured 1.5e-4), which is ONNX Runtime's float32
    arithmetic, not the export: on the same runtime the export equals the wheel's own file within 1e-5."""
    checkpoint = zero_shot_checkpoint(resolve_config("ppocr_cpu"))
    records = load_split(sroie_dir, "val")[0][:2]
    assert _max_map_difference(checkpoint, records, (960,)) < 1e-4
    assert _max_map_difference(checkpoint, records, (1280,)) < 2e-4
    exported = OnnxModel(export_bytes(checkpoint))
    for record in records:
        tensor, _ = image_tensor(read_image(record.path), 1280, exported)
        wheel = onnx_runtime_map(bundled_onnx_path(), tensor.numpy())
        assert float(np.abs(exported(tensor)["prob"].numpy() - wheel).max()) < 1e-5


def test_both_backends_score_alike_with_an_ensemble_and_tta(tiny_checkpoint: Path, synth_dir: Path,
                                                            tmp_path: Path) -> None:
    records = load_split(synth_dir, "val")[0]
    exported = export_onnx(tiny_checkpoint, tmp_path / "tiny.onnx")
    gt = {r.name: r.polygons() for r in records}
    scores = {}
    for name, paths, backend in (("torch", [tiny_checkpoint, tiny_checkpoint.parent / "last.ckpt"], "torch"),
                                 ("ort", [tiny_checkpoint, tiny_checkpoint.parent / "last.ckpt"], "onnxruntime"),
                                 ("file", [exported, tiny_checkpoint.parent / "last.ckpt"], "torch")):
        predictor = Predictor.load(paths, tta="hflip", backend=backend)
        predictor.config.thresh = 0.5  # the random tiny model's maps sit near 0.5: some polygons to compare
        predictions = {r.name: predictor.predict(read_image(r.path))[0] for r in records}
        scores[name] = evaluate(gt, predictions).hmean
        if name == "torch":
            polygons = sum(len(p) for p in predictions.values())
    assert polygons > 0
    assert abs(scores["ort"] - scores["torch"]) < 1e-3 and abs(scores["file"] - scores["torch"]) < 1e-3


def test_export_refuses_to_overwrite_and_foreign_files_are_named(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = export_onnx(tiny_checkpoint, tmp_path / "m.onnx")
    before = out.read_bytes()
    with pytest.raises(FileExistsError, match="does not replace it unasked"):
        export_onnx(tiny_checkpoint, out)
    assert out.read_bytes() == before
    foreign = onnx.load_from_string(before)
    del foreign.metadata_props[:]
    (tmp_path / "foreign.onnx").write_bytes(foreign.SerializeToString())
    with pytest.raises(InputError, match=f"no '{METADATA_KEY}' metadata.*python -m kit export"):
        Predictor.load([tmp_path / "foreign.onnx"])
    with pytest.raises(InputError, match="unknown backend 'tensorrt'; known: torch, onnxruntime"):
        Predictor.load([tiny_checkpoint], backend="tensorrt")


def test_export_and_predict_on_the_command_line(tiny_checkpoint: Path, synth_dir: Path, tmp_path: Path) -> None:
    def kit(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "kit", *args], capture_output=True, text=True, cwd=ROOT)

    made = kit("export", str(tiny_checkpoint), "--out", str(tmp_path / "m.onnx"))
    assert made.returncode == 0 and "dynamic batch, height and width" in made.stdout, made.stderr
    again = kit("export", str(tiny_checkpoint), "--out", str(tmp_path / "m.onnx"))
    assert again.returncode != 0 and "--overwrite" in again.stderr
    images = str(synth_dir / "images" / "val")
    for args in (["--ckpt", str(tmp_path / "m.onnx")], ["--ckpt", str(tiny_checkpoint), "--backend", "onnxruntime"]):
        run = kit("predict", *args, "--images", images, "--out", str(tmp_path / "p.json"), "--thresh", "0.5")
        assert run.returncode == 0 and "polygons on 3 images" in run.stdout, run.stderr
