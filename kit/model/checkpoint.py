"""The checkpoint: one file that rebuilds the model, says how to run it and where it came from.

Training and soups write it through :meth:`Checkpoint.save` (atomically), everything else reads it
through :meth:`Checkpoint.load` and attributes, never string keys; loading unpickles tensors and
plain values only (``weights_only``), so a checkpoint from elsewhere cannot run code. On disk it is a ``torch.save``d
dict (``format`` 2); files written before the format was typed (no ``format`` key: weights
under ``model``, the training state at top level) still load.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kit.errors import InputError
from kit.files import atomic_path, write_bytes
from kit.model.config import ModelConfig
from kit.model.factory import model_from_config
from kit.model.postprocess import PostprocessConfig
from kit.paths import OUTPUTS

FORMAT = 2
#: Where a checkpoint's embedded ONNX graph is written when its own file is not on this machine (by content hash).
GRAPH_CACHE = OUTPUTS / ".cache" / "onnx"


@dataclass
class Checkpoint:
    """Weights, how to rebuild and run them, and their provenance.

    ``history`` holds the run's epochs up to this one (``last.ckpt`` has the whole run);
    ``training_state`` (optimizer, scheduler, scaler, early stopping) is what a resumed run
    needs and is absent from soups.
    """

    weights: dict[str, torch.Tensor]
    model_config: ModelConfig
    postprocess: PostprocessConfig
    eval_size: int
    run: str | None = None
    epoch: int | None = None
    val: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    train_config: dict[str, Any] | None = None
    soup_of: list[str] = field(default_factory=list)
    training_state: dict[str, Any] | None = None
    #: A PP-OCR detector converted from a file of its own (not the bundled one): that ONNX file's bytes, so the
    #: checkpoint rebuilds on a machine without the file. Filled when saved.
    graph: bytes | None = None
    #: How the model's inputs were padded when it was validated, and so how inference pads them: each side to a
    #: multiple of this (PaddleOCR's own pretrained detector), or None, to a square (the kit trains and validates
    #: on square letterboxes). It matters: PP-OCR's squeeze-excitation blocks average over the padding too, and
    #: a model fine-tuned on squares loses H-mean on inputs padded otherwise (bench/results/backends.md).
    pad_multiple: int | None = None

    @property
    def arch(self) -> str:
        return self.model_config.arch

    @property
    def normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) the model's input is normalised with."""
        return self.model_config.mean, self.model_config.std

    def build_model(self, device: str | torch.device = "cpu") -> nn.Module:
        """The model with these weights, in eval mode on ``device``."""
        model = model_from_config(self.model_config, pretrained=False)
        model.load_state_dict(self.weights)
        return model.to(device).eval()

    def save(self, path: Path | str) -> Path:
        """Write the checkpoint atomically (a kill mid-save leaves the previous file intact)."""
        path = Path(path)
        source = self.model_config.source
        graph = self.graph if self.graph is not None or not source else Path(source).read_bytes()
        with atomic_path(path) as tmp:
            torch.save({"format": FORMAT, "weights": self.weights, "model_config": self.model_config.to_dict(),
                        "postprocess": self.postprocess.to_dict(), "eval_size": self.eval_size, "run": self.run,
                        "epoch": self.epoch, "val": self.val, "history": self.history,
                        "train_config": self.train_config, "soup_of": self.soup_of,
                        "training_state": self.training_state, "graph": graph,
                        "pad_multiple": self.pad_multiple}, tmp)
        return path

    @classmethod
    def load(cls, path: Path | str, device: str | torch.device = "cpu") -> Checkpoint:
        """Read ``path`` (either format); a missing or foreign file is an error naming it."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        try:  # weights_only: tensors and plain values only, so opening a file never runs code from it
            state = torch.load(path, map_location=device, weights_only=True)
        except pickle.UnpicklingError as err:
            raise InputError(f"{path}: holds objects other than tensors and plain values, which could run code when "
                             f"loaded, so the kit does not open it ({str(err).splitlines()[0]}); this kit writes "
                             "none: re-save the weights from a trusted session") from None
        except (RuntimeError, EOFError, OSError) as err:
            raise InputError(f"{path}: not a readable checkpoint, truncated or corrupt "
                             f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'empty'})") from None
        if not isinstance(state, dict) or "model_config" not in state:
            raise InputError(f"{path}: not a checkpoint written by this kit (no model_config)")
        if state.get("format", 1) > FORMAT:
            raise InputError(f"{path}: checkpoint format {state['format']} is newer than this kit's ({FORMAT})")
        if "format" not in state:  # format 1: weights under "model", training state at top level
            training = {k: state[k] for k in ("optimizer", "scheduler", "scaler") if k in state}
            if "best" in state:
                best = state["best"]
                training["early_stopping"] = {"best_score": best["hmean"], "best_epoch": best["epoch"],
                                              "bad_epochs": best["bad_epochs"]}
                training["best_path"] = best["path"]
            state = {**state, "weights": state["model"], "training_state": training or None,
                     "run": (state.get("train_config") or {}).get("run_name")}
        model_config = _with_local_graph(ModelConfig(**state["model_config"]), state.get("graph"))
        return cls(weights=state["weights"], model_config=model_config,
                   postprocess=PostprocessConfig(**state["postprocess"]), eval_size=state["eval_size"],
                   run=state.get("run"), epoch=state.get("epoch"), val=state.get("val") or {},
                   history=state.get("history") or [], train_config=state.get("train_config"),
                   soup_of=state.get("soup_of") or [], training_state=state.get("training_state"),
                   graph=state.get("graph"), pad_multiple=state.get("pad_multiple"))


def _with_local_graph(config: ModelConfig, graph: bytes | None) -> ModelConfig:
    """``config`` with ``source`` pointing at a file on this machine holding ``graph``: its own path when that file
    is there with the same bytes, else the embedded graph written to :data:`GRAPH_CACHE`."""
    if graph is None or not config.source:
        return config
    digest = hashlib.sha256(graph).hexdigest()
    source = Path(config.source)
    if source.is_file() and hashlib.sha256(source.read_bytes()).hexdigest() == digest:
        return config
    cached = GRAPH_CACHE / f"{digest}.onnx"
    if not cached.is_file():
        write_bytes(cached, graph)
    return replace(config, source=str(cached))
