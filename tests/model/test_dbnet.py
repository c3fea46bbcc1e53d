"""DBNet on every report backbone: builds, runs forward/backward, counts parameters, loads local weights."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import pytest
import timm
import torch
from huggingface_hub.errors import LocalEntryNotFoundError

from kit.model.factory import build_model, count_parameters
from kit.model.loss import db_loss

#: Backbone -> (encoder, whole DBNet) parameters. The reports' 12M / 28M / 50M / 56.7M are the models'
#: (B3's 12M counts its 1.1M DBNet head on top of a 10.1M encoder); HRNet-W44's 56.7M is its encoder.
PARAMETERS = {"resnet18": (11_176_512, 12_340_930), "efficientnet_b3": (10_103_336, 11_175_594),
              "convnext_tiny": (27_818_592, 29_105_890), "convnext_small": (49_453_152, 50_740_450),
              "hrnet_w44": (56_714_160, 58_124_338)}
REPORT_ARCHS = list(PARAMETERS)


def fake_batch(n: int, height: int, width: int) -> dict[str, torch.Tensor]:
    gt = torch.zeros(n, 1, height, width)
    gt[:, :, height // 4: height // 2, width // 8: width - width // 8] = 1
    return {"gt": gt, "mask": torch.ones_like(gt), "thresh_map": torch.full_like(gt, 0.3) + 0.4 * gt,
            "thresh_mask": torch.ones_like(gt)}


@pytest.mark.parametrize("arch", REPORT_ARCHS)
def test_forward_backward_and_eval(arch: str) -> None:
    torch.manual_seed(0)
    model = build_model(arch, pretrained=False)
    images = torch.randn(2, 3, 96, 64)
    outputs = model(images)
    assert set(outputs) == {"prob_logits", "thresh", "binary"}
    assert all(o.shape == (2, 1, 96, 64) and o.dtype == torch.float32 for o in outputs.values())
    loss = db_loss(outputs, fake_batch(2, 96, 64))["total"]
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.encoder.parameters() if p.requires_grad)

    calls = []
    model.thresh_head.register_forward_hook(lambda *_: calls.append(1))
    model.eval()
    with torch.no_grad():
        prob = model(torch.randn(1, 3, 70, 50))  # sizes not divisible by 32 are padded inside
    assert set(prob) == {"prob"} and prob["prob"].shape == (1, 1, 70, 50)
    assert 0 <= prob["prob"].min() and prob["prob"].max() <= 1
    assert not calls, "evaluation must skip the threshold branch"
    assert (count_parameters(model.encoder), count_parameters(model)) == PARAMETERS[arch]


def test_hrnet_w44_parameter_count_matches_the_report() -> None:
    model = build_model("hrnet_w44")
    assert count_parameters(model.encoder) == 56_714_160
    assert model.levels == (1, 2, 3, 4)  # the report fed levels 1-4 of [64, 128, 256, 512, 1024]
    assert [model.encoder.feature_info.channels()[i] for i in model.levels] == [128, 256, 512, 1024]


def test_levels_come_from_feature_info() -> None:
    assert build_model("convnext_tiny").levels == (0, 1, 2, 3)  # strides 4..32 already
    assert build_model("resnet18", levels=(2, 3, 4, 4)).levels == (2, 3, 4, 4)


def test_fpn_decoder() -> None:
    model = build_model("resnet18", decoder="fpn")
    assert model(torch.randn(1, 3, 64, 64))["binary"].shape == (1, 1, 64, 64)
    with pytest.raises(ValueError, match="unknown decoder"):
        build_model("resnet18", decoder="unet")


def test_unknown_backbone_lists_close_names() -> None:
    with pytest.raises(ValueError, match=r"unknown backbone 'hrnet_w45'.*close names: .*hrnet_w44"):
        build_model("hrnet_w45")


def test_pretrained_path_loads_a_local_file(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = timm.create_model("resnet18", pretrained=False)
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    model = build_model("resnet18", pretrained_path=path)
    torch.testing.assert_close(model.encoder.conv1.weight, source.conv1.weight)
    torch.testing.assert_close(model.encoder.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    with pytest.raises(FileNotFoundError, match="pretrained weights not found"):
        build_model("resnet18", pretrained_path=tmp_path / "missing.pth")


def test_bf16_autocast_keeps_maps_and_loss_in_fp32() -> None:
    model = build_model("resnet18")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = model(torch.randn(2, 3, 64, 64))
        losses = db_loss(outputs, fake_batch(2, 64, 64))
    assert all(o.dtype == torch.float32 for o in outputs.values())
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())


def test_weights_that_cannot_be_fetched_say_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    """No model hub: one error naming the backbone and the ways forward, not huggingface_hub's traceback."""
    real = timm.create_model

    def offline(name, **kwargs):
        if kwargs.get("pretrained") and "pretrained_cfg_overlay" not in kwargs:
            raise LocalEntryNotFoundError("cannot find the requested files in the local cache")
        return real(name, **kwargs)

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(FileNotFoundError, match=r"'hrnet_w44' could not be fetched.*pretrained_path.*ppocr_det"):
        build_model("hrnet_w44", pretrained=True)


@pytest.mark.parametrize("reachable", [False, True])
def test_an_unreachable_hub_is_asked_nothing_and_the_cache_alone_is_tried(reachable: bool,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, huggingface_hub would retry each file for about a minute: the kit probes the hub once and, with no
    answer, lets timm look in the local cache only (huggingface_hub's offline mode, restored afterwards)."""
    from huggingface_hub import constants

    def connect(*args, **kwargs):
        if not reachable:
            raise OSError("[Errno -2] Name or service not known")
        return contextlib.nullcontext()

    seen = []

    def create_model(name, **kwargs):
        seen.append(constants.HF_HUB_OFFLINE)
        raise LocalEntryNotFoundError("cannot find the requested files in the local cache")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(socket, "create_connection", connect)
    monkeypatch.setattr(timm, "create_model", create_model)
    with pytest.raises(FileNotFoundError, match="'hrnet_w44' could not be fetched"):
        build_model("hrnet_w44", pretrained=True)
    assert seen == [not reachable] and constants.HF_HUB_OFFLINE is False
