"""TrainConfig: the reports' presets, overrides and their errors, validation, the per-epoch settings."""

from __future__ import annotations

import pytest

from kit.model.ppocr import DETECTORS
from kit.training.config import (
    config_for,
    merge_settings,
    resolve_config,
    shrink_ratio_for_epoch,
    size_for_epoch,
)
from kit.training.presets import PRESETS


def test_report_presets_are_the_reports_recipes() -> None:
    wd = {"efficientnet_b3": 8.5e-5, "convnext_tiny": 8.5e-5, "convnext_small": 1.2e-4, "hrnet_w44": 8.2e-5}
    for arch, decay in wd.items():
        config = resolve_config(arch)
        assert (config.arch, config.weight_decay, config.optimizer) == (arch, decay, "adam")
        assert config.lr == (4e-4 if arch == "convnext_small" else 4.5e-4)
        assert (config.t_max, config.eta_min, config.epochs, config.patience, config.batch_size) == (20, 8e-6, 20, 5, 8)
        assert config.precision == "fp32" and config.schedule == [[0, 640], [4, 960]] and config.pretrained
    assert set(PRESETS) >= {"smoke", *wd}


def test_every_preset_resolves_and_every_zoo_member_defaults_to_ppocr_cpu() -> None:
    for name in PRESETS:
        assert resolve_config(name).preset == name
    for name in DETECTORS:
        config = config_for(name)
        assert (config.arch, config.preset) == (name, "ppocr_cpu")
    assert config_for("tf_efficientnet_lite0").preset == "lite0_cpu" and config_for("resnet18").preset is None
    zoo = resolve_config("ppocr_zoo")
    assert zoo.teachers == ["ppocr_v4_mobile", "ppocr_det"] and zoo.arch == "ppocr_v4_mobile"


def test_overrides_nested_settings_and_errors() -> None:
    config = resolve_config("hrnet_w44", lr=1e-3, epochs=None, postprocess={"thresh": 0.25}, fold=0)
    assert (config.lr, config.epochs, config.postprocess.thresh, config.postprocess.box_thresh) == (1e-3, 20, 0.25, 0.4)
    with pytest.raises(ValueError, match="unknown setting"):
        resolve_config("hrnet_w44", learning_rate=1e-3)
    with pytest.raises(ValueError, match="unknown preset 'hrnet'"):
        resolve_config("hrnet")
    with pytest.raises(ValueError, match="precision"):
        resolve_config(precision="fp8")


def test_new_settings_are_validated_and_the_shrink_ratio_rises() -> None:
    for bad in ({"lr_interval": "batch"}, {"pretrained_lr_scale": 0.0}, {"ema_decay": 1.0},
                {"shrink_ratio_end": 1.2}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            resolve_config(**bad)
    rising = resolve_config(epochs=5, targets={"shrink_ratio": 0.4}, shrink_ratio_end=0.6)
    assert [shrink_ratio_for_epoch(rising, e) for e in range(5)] == pytest.approx([0.4, 0.45, 0.5, 0.55, 0.6])
    assert shrink_ratio_for_epoch(resolve_config(targets={"shrink_ratio": 0.5}), 3) == 0.5


def test_resolution_schedule() -> None:
    assert [size_for_epoch([[0, 640], [4, 960]], e) for e in range(6)] == [640] * 4 + [960] * 2
    three = [[0, 640], [3, 800], [6, 960]]
    assert [size_for_epoch(three, e) for e in (0, 2, 3, 5, 6, 19)] == [640, 640, 800, 800, 960, 960]


def test_merge_settings_refuses_a_setting_given_twice() -> None:
    assert merge_settings({"arch": "resnet18", "lr": None}, {"lr": 1e-3}) == {"arch": "resnet18", "lr": 1e-3}
    with pytest.raises(ValueError, match=r"\['arch'\] set both"):
        merge_settings({"arch": "resnet18"}, {"arch": "hrnet_w44"})

