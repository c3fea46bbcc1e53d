"""Inference: exact TTA inverses, ensembles, soups, threshold search, and the command lines."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from kit.data.annotations import load_split, read_image
from kit.data.dataset import IMAGENET_MEAN, IMAGENET_STD
from kit.evaluation.cleval import aggregate, evaluate_image
from kit.evaluation.cleval_files import evaluate_files
from kit.inference.predict import Predictor, predict, predict_image
from kit.inference.soup import average_checkpoints
from kit.inference.threshold_search import best_setting, cache_maps, threshold_search
from kit.inference.tta import View, parse_tta
from kit.model.checkpoint import Checkpoint
from kit.model.config import ModelConfig
from kit.model.postprocess import PostprocessConfig, postprocess
from kit.paths import ROOT


class PixelModel(torch.nn.Module):
    """A stand-in network whose probability at a pixel is a function of that pixel alone."""

    config = ModelConfig(mean=IMAGENET_MEAN, std=IMAGENET_STD)  # the kit's models carry their normalisation so

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"prob": torch.sigmoid(images[:, :1] * 2.0 - images[:, 2:3])}


def asymmetric_image(height: int = 203, width: int = 317) -> np.ndarray:
    """Smooth but asymmetric in every direction, so an un-inverted flip or rotation shows."""
    yy, xx = np.mgrid[0:height, 0:width]
    red = 127 + 120 * np.sin(xx / 23.0 + yy / 41.0) * np.cos(yy / 17.0)
    blue = 255.0 * xx / width * (yy / height) ** 2
    return np.stack([red, np.full_like(red, 90.0), blue], axis=2).astype(np.uint8)


def test_tta_views_parse() -> None:
    views = parse_tta("hflip, rot90,scale=0.9,scale=1.1")
    assert views == [View(), View("hflip"), View("rot90"), View(scale=0.9), View(scale=1.1)]
    with pytest.raises(ValueError, match="unknown TTA view 'transpose'"):
        parse_tta("transpose")


@pytest.mark.parametrize("view", ["hflip", "vflip", "rot90", "rot180", "rot270"])
def test_tta_inverse_is_exact(view: str) -> None:
    image = asymmetric_image()
    plain = Predictor([PixelModel()], [160], PostprocessConfig())
    plain_map, scale = plain.prob_map(image)
    viewed = Predictor([PixelModel()], [160], PostprocessConfig(), tta=[view])
    view_maps = viewed._view_maps(viewed.models[0], 160, None, image)
    back = viewed.views[1].inverse(view_maps[1])
    assert back.shape == plain_map.shape
    np.testing.assert_allclose(back, plain_map, atol=2e-3)  # the same map, only resampled in another order
    if view_maps[1].shape == plain_map.shape:  # the test would catch a forgotten inverse
        assert np.abs(view_maps[1] - plain_map).max() > 0.05
    averaged, _ = viewed.prob_map(image)
    np.testing.assert_allclose(averaged, plain_map, atol=2e-3)


def test_multi_scale_maps_come_back_to_the_common_frame() -> None:
    image = asymmetric_image()
    plain_map, _ = Predictor([PixelModel()], [160], PostprocessConfig()).prob_map(image)
    scaled, _ = Predictor([PixelModel()], [160], PostprocessConfig(), tta="scale=0.8,scale=1.25").prob_map(image)
    assert scaled.shape == plain_map.shape
    assert np.abs(scaled - plain_map).mean() < 0.01


class ShapeRecorder(PixelModel):
    """A :class:`PixelModel` that remembers the input shapes it was fed."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        self.shapes.append(tuple(images.shape[-2:]))
        return super().forward(images)


def test_each_model_is_padded_as_it_was_validated() -> None:
    image = asymmetric_image()  # 203 x 317: at 160 px, 102 x 160
    square, padded = ShapeRecorder(), ShapeRecorder()
    predictor = Predictor([square, padded], [160, 160], PostprocessConfig(), pad_multiples=[None, 32])
    prob, _ = predictor.prob_map(image)
    assert square.shapes == [(160, 160)] and padded.shapes == [(128, 160)]
    alone, _ = Predictor([PixelModel()], [160], PostprocessConfig()).prob_map(image)
    np.testing.assert_allclose(prob, alone, atol=1e-6)  # a pixel-wise model: the padding only changes the cost
    assert Predictor([PixelModel()], [160], PostprocessConfig()).pad_multiples == [None]  # the kit trains on squares
    with pytest.raises(ValueError, match="2 pad multiples for 1 models"):
        Predictor([PixelModel()], [160], PostprocessConfig(), pad_multiples=[None, 32])


@pytest.mark.slow
def test_checkpoints_carry_their_padding_to_both_backends(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from kit.inference.onnx_backend import export_onnx
    from kit.training.config import resolve_config
    from kit.training.run import zero_shot_checkpoint

    assert Checkpoint.load(tiny_checkpoint).pad_multiple is None  # trained and validated on square letterboxes
    assert zero_shot_checkpoint(resolve_config("ppocr_cpu")).pad_multiple == 32  # as PaddleOCR's inference pads
    checkpoint = Checkpoint.load(tiny_checkpoint)
    checkpoint.pad_multiple = 32
    padded = checkpoint.save(tmp_path / "padded.ckpt")
    assert Checkpoint.load(padded).pad_multiple == 32
    assert Checkpoint.load(average_checkpoints([padded, padded], tmp_path / "soup.ckpt")).pad_multiple == 32
    exported = export_onnx(padded, tmp_path / "padded.onnx")
    for backend in ("torch", "onnxruntime"):
        assert Predictor.load([tiny_checkpoint, padded], backend=backend).pad_multiples == [None, 32]
    assert Predictor.load([exported]).pad_multiples == [32]


@pytest.mark.slow
def test_ensemble_of_one_model_is_that_model(tiny_checkpoint: Path, synth_dir: Path) -> None:
    image = read_image(load_split(synth_dir, "val")[0][0].path)
    single = Predictor.load([tiny_checkpoint], backend="torch")
    doubled = Predictor.load([tiny_checkpoint, tiny_checkpoint], weights=[0.3, 0.7], backend="torch")
    np.testing.assert_allclose(doubled.prob_map(image)[0], single.prob_map(image)[0], atol=1e-6)
    checkpoint = Checkpoint.load(tiny_checkpoint)
    direct = predict_image(checkpoint.build_model(), image, checkpoint.eval_size, single.config)
    found = single.predict(image)
    assert len(found[0]) == len(direct[0])
    for a, b in zip(found[0], direct[0]):
        np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="weights"):
        Predictor.load([tiny_checkpoint], weights=[0.5, 0.5])


@pytest.mark.slow
def test_soup_of_identical_checkpoints_is_the_checkpoint(tiny_checkpoint: Path, tmp_path: Path) -> None:
    soup = average_checkpoints([tiny_checkpoint, tiny_checkpoint, tiny_checkpoint], tmp_path / "soup.ckpt")
    original, souped = Checkpoint.load(tiny_checkpoint), Checkpoint.load(soup)
    assert original.weights.keys() == souped.weights.keys()
    for key in original.weights:
        torch.testing.assert_close(souped.weights[key], original.weights[key], rtol=0, atol=1e-7)
    assert souped.soup_of == [str(tiny_checkpoint)] * 3 and souped.eval_size == 160
    assert souped.training_state is None and souped.model_config == original.model_config


@pytest.mark.slow
def test_soup_averages_weights(tiny_checkpoint: Path, tmp_path: Path) -> None:
    original = Checkpoint.load(tiny_checkpoint)
    shifted = replace(original, weights={k: v + 1.0 if v.is_floating_point() else v
                                         for k, v in original.weights.items()})
    shifted.save(tmp_path / "shifted.ckpt")
    soup = Checkpoint.load(average_checkpoints([tiny_checkpoint, tmp_path / "shifted.ckpt"], tmp_path / "s.ckpt"))
    key = next(k for k, v in original.weights.items() if v.is_floating_point())
    torch.testing.assert_close(soup.weights[key], original.weights[key] + 0.5)


@pytest.mark.slow
def test_threshold_search_is_exact_and_returns_its_best(tiny_checkpoint: Path, synth_dir: Path) -> None:
    records = load_split(synth_dir, "val")[0]
    predictor = Predictor.load([tiny_checkpoint])
    maps = cache_maps(predictor, records, progress=False)
    table = threshold_search(maps, [0.45, 0.5], [0.5, 0.52, 0.55], [1.5, 2.0], workers=2, progress=False)
    assert len(table) == 12 and table["hmean"].is_monotonic_decreasing
    best = best_setting(table)
    assert best == {k: table.iloc[0][k] for k in ("thresh", "box_thresh", "unclip_ratio")}
    for _, row in table.sample(4, random_state=0).iterrows():
        config = replace(PostprocessConfig(), thresh=row["thresh"], box_thresh=row["box_thresh"],
                         unclip_ratio=row["unclip_ratio"])
        direct = aggregate({m.name: evaluate_image(m.gt, postprocess(m.prob.astype(np.float32), m.scale, m.image_size,
                                                                      config)[0]) for m in maps})
        assert direct.hmean == pytest.approx(row["hmean"], abs=1e-12)
        assert direct.precision == pytest.approx(row["precision"], abs=1e-12)


@pytest.mark.slow
def test_predict_command_line_then_metric(tiny_checkpoint: Path, synth_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred.json"
    run = subprocess.run([sys.executable, "-m", "kit", "predict", "--ckpt", str(tiny_checkpoint), "--images",
                          str(synth_dir / "images" / "val"), "--out", str(out), "--tta", "hflip",
                          "--thresh", "0.45"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert set(doc["images"]) == {r.name for r in load_split(synth_dir, "val")[0]}
    evaluate_files(synth_dir / "jsons" / "val.json", out)  # the metric reads it as a competition JSON
    records = predict(Predictor.load([tiny_checkpoint], tta="hflip", config=replace(
        Checkpoint.load(tiny_checkpoint).postprocess, thresh=0.45)),
        synth_dir / "images" / "val", progress=False)
    assert {r.name: len(r.words) for r in records} == {n: len(e["words"]) for n, e in doc["images"].items()}
