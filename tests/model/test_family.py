"""Model families: one entry says what a kind of detector needs, and a second PP-OCR detector is one table entry."""

from __future__ import annotations

import json
from dataclasses import fields

import onnx
import pytest
import torch

from kit.errors import InputError
from kit.inference.onnx_backend import METADATA_KEY, export_bytes
from kit.model import ppocr
from kit.model.config import ModelConfig, ModelSettings
from kit.model.factory import build_model
from kit.model.family import PPOCR, TIMM_DBNET, detector_names, family_of
from kit.training.config import TrainConfig, resolve_config
from kit.training.run import zero_shot_checkpoint


def test_families_by_name() -> None:
    assert family_of("ppocr_det") is PPOCR and family_of("resnet18") is TIMM_DBNET
    assert detector_names() == list(ppocr.DETECTORS)
    with pytest.raises(InputError, match="unknown backbone 'ppocr_dte'.*close names: ppocr_det"):
        family_of("ppocr_dte")


def test_a_second_pp_ocr_detector_is_one_table_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registered once (here the bundled file under a second name), it builds, trains with its own teacher, is
    refused freezing, pads as PaddleOCR does and exports as its source graph, with no other edit."""
    monkeypatch.setitem(ppocr.DETECTORS, "ppocr_copy", ppocr.BundledDetector(
        "PP-OCRv6 small det, again", "rapidocr", "3.10.0", "rapidocr/models/PP-OCRv6_det_small.onnx"))
    copy, original = build_model("ppocr_copy", pretrained=True).eval(), build_model("ppocr_det", pretrained=True).eval()
    assert copy.config.weights == ("bundled PP-OCRv6_det_small.onnx (PP-OCRv6 small det, again; rapidocr 3.10.0, "
                                   "Apache-2.0)")
    x = torch.rand(1, 3, 96, 128)
    torch.testing.assert_close(copy(x)["prob"], original(x)["prob"], rtol=0, atol=0)
    config = resolve_config("ppocr_cpu", arch="ppocr_copy")
    assert config.teacher == "start"
    with pytest.raises(InputError, match="ppocr_copy is one graph"):
        resolve_config("ppocr_cpu", arch="ppocr_copy", freeze_levels=1)
    checkpoint = zero_shot_checkpoint(config)
    assert checkpoint.pad_multiple == ppocr.STRIDE and checkpoint.arch == "ppocr_copy"
    graph = onnx.load_from_string(export_bytes(checkpoint))
    meta = json.loads(next(p.value for p in graph.metadata_props if p.key == METADATA_KEY))
    assert meta["stride"] == ppocr.STRIDE and meta["arch"] == "ppocr_copy"
    assert {i.name for i in graph.graph.initializer} == {
        i.name for i in onnx.load(str(ppocr.bundled_onnx_path())).graph.initializer}  # PaddleOCR's own graph


def test_model_settings_are_declared_once() -> None:
    """TrainConfig extends ModelSettings and ModelConfig extends the architecture: the same keys everywhere, every
    one a ``--set`` key, and build_model refuses a setting it does not know."""
    model_keys = {f.name for f in fields(ModelSettings)}
    assert model_keys <= {f.name for f in fields(TrainConfig)} and issubclass(TrainConfig, ModelSettings)
    architecture = {"arch", "decoder", "levels", "k", "thresh_branch", "inner_channels"}
    assert architecture <= {f.name for f in fields(ModelConfig)}
    config = resolve_config("smoke", decoder="fpn", levels=[1, 2, 3, 4], k=40.0, inner_channels=128)
    model = build_model(**{k: getattr(config, k) for k in model_keys})
    assert (model.config.decoder, model.config.levels, model.config.k, model.config.inner_channels) == (
        "fpn", (1, 2, 3, 4), 40.0, 128)
    with pytest.raises(InputError, match=r"unknown model setting\(s\) \['inner'\]"):
        build_model("resnet18", inner=64)


def test_a_train_config_stored_before_k_was_a_setting_still_loads() -> None:
    stored = resolve_config("ppocr_cpu").to_dict()
    del stored["k"]  # checkpoints and config.json files written before the model settings were declared once
    loaded = TrainConfig(**json.loads(json.dumps(stored)))
    assert loaded.k == 50.0 and json.dumps(loaded.to_dict()) == json.dumps(resolve_config("ppocr_cpu").to_dict())
