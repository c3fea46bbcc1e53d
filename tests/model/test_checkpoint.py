"""The typed checkpoint: round trip, the older on-disk format, clear errors, and early stopping."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kit.model.checkpoint import Checkpoint
from kit.training.loop import EarlyStopping


@pytest.mark.slow
def test_round_trip_keeps_every_field(tiny_checkpoint: Path, tmp_path: Path) -> None:
    original = Checkpoint.load(tiny_checkpoint)
    copy = Checkpoint.load(original.save(tmp_path / "copy.ckpt"))
    assert (copy.model_config, copy.postprocess, copy.eval_size, copy.run, copy.epoch, copy.val, copy.history) == (
        original.model_config, original.postprocess, original.eval_size, original.run, original.epoch, original.val,
        original.history)
    assert copy.training_state.keys() == {"optimizer", "scheduler", "scaler", "early_stopping", "best_path",
                                          "optimizer_steps"}
    for key, value in original.weights.items():
        torch.testing.assert_close(copy.weights[key], value, rtol=0, atol=0)


@pytest.mark.slow
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


class Payload:
    """Unpickling this runs code: it creates the file ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.slow
def test_loading_never_runs_code_from_the_file(tiny_checkpoint: Path, tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    real = Checkpoint.load(tiny_checkpoint)
    torch.save({"format": 2, "weights": real.weights, "model_config": real.model_config.to_dict(),
                "postprocess": real.postprocess.to_dict(), "eval_size": 64, "val": {"x": Payload(marker)}},
               tmp_path / "shared.ckpt")
    with pytest.raises(ValueError, match=r"shared.ckpt: holds objects other than tensors.*could run code"):
        Checkpoint.load(tmp_path / "shared.ckpt")
    assert not marker.exists()


@pytest.mark.slow
def test_a_truncated_or_corrupt_checkpoint_is_an_error_naming_it(tiny_checkpoint: Path, tmp_path: Path) -> None:
    data = tiny_checkpoint.read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.ckpt").write_bytes(b"")
    for name in ("cut.ckpt", "empty.ckpt"):
        with pytest.raises(ValueError, match=rf"{name}: not a readable checkpoint, truncated or corrupt"):
            Checkpoint.load(tmp_path / name)


@pytest.mark.slow
def test_a_save_killed_midway_leaves_the_previous_file(tiny_checkpoint: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoint = Checkpoint.load(tiny_checkpoint)
    path = checkpoint.save(tmp_path / "last.ckpt")
    before = path.read_bytes()

    def killed(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_early_stopping_counts_epochs_without_a_better_score() -> None:
    stopping = EarlyStopping(patience=2)
    assert [stopping.update(e, s) for e, s in enumerate([0.5, 0.6, 0.6, 0.55])] == [True, True, False, False]
    assert stopping.stop and (stopping.best_epoch, stopping.best_score) == (1, 0.6)
