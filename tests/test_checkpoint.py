"""The typed checkpoint: round trip, the older on-disk format, clear errors, and early stopping."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kit.checkpoint import Checkpoint
from kit.train import EarlyStopping


def test_round_trip_keeps_every_field(tiny_checkpoint: Path, tmp_path: Path) -> None:
    original = Checkpoint.load(tiny_checkpoint)
    copy = Checkpoint.load(original.save(tmp_path / "copy.ckpt"))
    assert (copy.model_config, copy.postprocess, copy.eval_size, copy.run, copy.epoch, copy.val, copy.history) == (
        original.model_config, original.postprocess, original.eval_size, original.run, original.epoch, original.val,
        original.history)
    assert copy.training_state.keys() == {"optimizer", "scheduler", "scaler", "early_stopping", "best_path"}
    for key, value in original.weights.items():
        torch.testing.assert_close(copy.weights[key], value, rtol=0, atol=0)


def test_checkpoints_written_before_the_typed_format_still_load(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """The format-1 layout (weights under ``model``, the training state at top level), as the kit wrote it before."""
    new = Checkpoint.load(tiny_checkpoint)
    state = new.training_state
    early = state["early_stopping"]
    torch.save({"model": new.weights, "model_config": new.model_config.to_dict(),
                "postprocess": new.postprocess.to_dict(), "eval_size": new.eval_size, "train_config": new.train_config,
                "epoch": new.epoch, "optimizer": state["optimizer"], "scheduler": state["scheduler"],
                "scaler": state["scaler"], "history": new.history, "val": new.val,
                "best": {"hmean": early["best_score"], "epoch": early["best_epoch"], "path": state["best_path"],
                         "bad_epochs": early["bad_epochs"]}}, tmp_path / "old.ckpt")
    old = Checkpoint.load(tmp_path / "old.ckpt")
    assert (old.model_config, old.postprocess, old.epoch, old.history) == (new.model_config, new.postprocess,
                                                                           new.epoch, new.history)
    assert old.training_state["early_stopping"] == early and old.training_state["best_path"] == state["best_path"]
    x = torch.zeros(1, 3, 64, 64)
    torch.testing.assert_close(old.build_model()(x)["prob"], new.build_model()(x)["prob"])


def test_missing_or_foreign_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing.ckpt"):
        Checkpoint.load(tmp_path / "nothing.ckpt")
    torch.save({"weights": {}}, tmp_path / "foreign.ckpt")
    with pytest.raises(ValueError, match="foreign.ckpt: not a checkpoint"):
        Checkpoint.load(tmp_path / "foreign.ckpt")


def test_early_stopping_counts_epochs_without_a_better_score() -> None:
    stopping = EarlyStopping(patience=2)
    assert [stopping.update(e, s) for e, s in enumerate([0.5, 0.6, 0.6, 0.55])] == [True, True, False, False]
    assert stopping.stop and (stopping.best_epoch, stopping.best_score) == (1, 0.6)
