"""ONNX export of a checkpoint, and ONNX Runtime as a :class:`~kit.inference.predict.Predictor` backend.

``python -m kit export CKPT --out model.onnx`` writes the probability map's inference graph (any batch, height
and width; the threshold branch, used only in training, is left out) with what inference needs in the file's
metadata: the input normalisation, the evaluation size, the postprocess settings and the checkpoint's
provenance. :class:`OnnxModel` runs such a graph (a file, or one exported in memory from a checkpoint) and
answers like the torch model (``model(batch)["prob"]``, ``model.config.mean/std``), so ensembles, TTA and the
threshold search's map cache run on it unchanged (``Predictor.load(..., backend="onnxruntime")``).

The exporter is torch's TorchScript-based one (``dynamo=False``): it needs no onnxscript, and it traces the
PP-OCR detector's onnx2torch graph as well as the timm DBNets.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from kit.errors import InputError
from kit.files import atomic_path
from kit.model.checkpoint import Checkpoint
from kit.model.postprocess import PostprocessConfig

#: ONNX opset of the export (onnxruntime 1.31 runs up to 23; 17 keeps older runtimes able to load it).
OPSET = 17
#: The metadata key holding the kit's JSON in an exported file.
METADATA_KEY = "kit"


class _ProbOnly(torch.nn.Module):
    """The probability map alone: inference needs nothing else, and the export stays one output."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)["prob"]


def export_bytes(checkpoint: Checkpoint, size: int | None = None) -> bytes:
    """The checkpoint's inference graph as ONNX bytes, traced at ``size`` (default: its evaluation size) with
    batch, height and width dynamic, and the kit's metadata (see :func:`metadata`)."""
    model = _ProbOnly(checkpoint.build_model("cpu")).eval()
    size = size or checkpoint.eval_size
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation and tracer notes, not the user's
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, size, size),), buffer, input_names=["images"],
                          output_names=["prob"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"},
                                        "prob": {0: "batch", 2: "height", 3: "width"}})
    graph = onnx.load_from_string(buffer.getvalue())
    graph.metadata_props.add(key=METADATA_KEY, value=json.dumps(metadata(checkpoint)))
    return graph.SerializeToString()


def metadata(checkpoint: Checkpoint) -> dict[str, Any]:
    """What inference needs besides the graph: normalisation, evaluation size, postprocess, and provenance."""
    mean, std = checkpoint.normalisation
    return {"arch": checkpoint.arch, "mean": list(mean), "std": list(std), "eval_size": checkpoint.eval_size,
            "postprocess": checkpoint.postprocess.to_dict(), "run": checkpoint.run, "epoch": checkpoint.epoch,
            "val": checkpoint.val}


def export_onnx(checkpoint: str | Path, out: str | Path, size: int | None = None, overwrite: bool = False) -> Path:
    """Write :func:`export_bytes` of ``checkpoint`` to ``out`` (atomically; an existing file only with
    ``overwrite``)."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; the kit does not replace it unasked: choose another --out, or "
                              "--overwrite")
    data = export_bytes(Checkpoint.load(checkpoint), size)
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
    return out


@dataclass
class _Normalisation:
    """The two fields of ``ModelConfig`` that :func:`kit.inference.predict.image_tensor` reads."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


class OnnxModel:
    """An exported graph on ONNX Runtime's CPU provider, called like the torch model."""

    def __init__(self, source: str | Path | bytes, threads: int | None = None):
        import onnxruntime  # deferred: only this backend needs it

        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        meta = read_metadata(data, "the ONNX bytes" if isinstance(source, bytes) else str(source))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        self.config = _Normalisation(tuple(meta["mean"]), tuple(meta["std"]))
        self.eval_size = int(meta["eval_size"])
        self.postprocess = PostprocessConfig(**meta["postprocess"])
        self.metadata = meta

    def eval(self) -> OnnxModel:
        return self

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        (prob,) = self.session.run(["prob"], {"images": np.ascontiguousarray(images.float().cpu().numpy())})
        return {"prob": torch.from_numpy(prob)}


def read_metadata(data: bytes, where: str) -> dict[str, Any]:
    """The kit's metadata of an exported graph; a file the kit did not export is an error saying so."""
    graph = onnx.load_from_string(data)
    found = {p.key: p.value for p in graph.metadata_props}
    if METADATA_KEY not in found:
        raise InputError(f"{where}: no {METADATA_KEY!r} metadata (normalisation, evaluation size, postprocess): "
                         "export it with python -m kit export CKPT --out FILE.onnx")
    return json.loads(found[METADATA_KEY])


def command(args: argparse.Namespace) -> None:
    """``python -m kit export CKPT --out model.onnx``."""
    out = export_onnx(args.checkpoint, args.out, args.size, args.overwrite)
    print(f"{args.checkpoint} -> {out} ({os.path.getsize(out) / 1e6:.1f} MB; dynamic batch, height and width; "
          f"opset {OPSET})")
