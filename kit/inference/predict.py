"""Inference: checkpoints (one, a fold ensemble or a cross-backbone "hybrid") with test-time augmentation.

Every model and every TTA view produces a probability map that is mapped back exactly into
one common frame, the letterbox of the original image at ``frame_size`` (the first
checkpoint's evaluation size unless given); the maps are averaged there (TTA views equally, models with
``weights``) and postprocessed once. Map averaging is what makes ensembles work: merging
polygons (voting, WBF) never beat the best single model in the competition.

TTA views: ``hflip``, ``vflip``, ``rot90``, ``rot180``, ``rot270`` and ``scale=0.9`` style
multi-scale. A view transforms the *original* image, is letterboxed and predicted, and its
map's valid region is transformed back (un-flipped, un-rotated) and resized to the common
frame, so nothing can be left flipped.

Command line: ``python -m kit predict --ckpt A.ckpt [--ckpt B.ckpt] --images DIR --out pred.json
[--tta hflip,vflip,scale=0.9,scale=1.1] [--weights 0.6,0.4] [--thresh 0.3 --box-thresh 0.4]``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

import cv2
import numpy as np
import torch
from tqdm import tqdm

from kit.data.annotations import ImageRecord, Word, image_records, read_annotations, read_image, to_json_doc
from kit.data.dataset import build_transform, letterbox, letterbox_size
from kit.errors import InputError
from kit.evaluation.cleval import CLEvalAccumulator, ImageResult
from kit.evaluation.leaderboard import write_checked_submission
from kit.files import write_text
from kit.inference.tta import parse_tta
from kit.model.checkpoint import Checkpoint
from kit.model.postprocess import PostprocessConfig, postprocess
from kit.runtime import autocast, peak_memory_mb


@lru_cache(maxsize=8)
def _normalizer(mean: tuple[float, ...], std: tuple[float, ...]) -> Any:
    return build_transform(None, mean, std)


def image_tensor(image: np.ndarray, size: int, model: torch.nn.Module,
                 multiple: int | None = None) -> tuple[torch.Tensor, tuple[float, float]]:
    """An RGB image letterboxed to ``size`` (padded to a square, or each side to ``multiple``) and normalised as
    ``model`` was trained: (1, 3, H, W), scale."""
    canvas, scale = letterbox(image, size, multiple)
    normalised = _normalizer(tuple(model.config.mean), tuple(model.config.std))(image=canvas)["image"]
    return torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1)))[None], scale


#: Where the networks run: torch (CPU or GPU), ONNX Runtime's CPU provider on an exported graph, or "auto": ONNX
#: Runtime for fp32 on a CPU (about twice torch's speed there, bench/results/backends.md), torch otherwise.
BACKENDS = ("auto", "torch", "onnxruntime")
def resolve_backend(backend: str, device: str, precision: str) -> str:
    """The backend ``"auto"`` stands for on ``device`` at ``precision``; an unknown name is an error."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    if backend == "auto":
        return "onnxruntime" if torch.device(device).type == "cpu" and precision == "fp32" else "torch"
    return backend


class Predictor:
    """Weighted map averaging over checkpoints and TTA views, then the postprocess."""

    def __init__(self, models: Sequence[torch.nn.Module], eval_sizes: Sequence[int], config: PostprocessConfig,
                 weights: Sequence[float] | None = None, tta: str | Sequence[str] | None = None,
                 frame_size: int | None = None, device: str | torch.device = "cpu", precision: str = "fp32",
                 pad_multiples: Sequence[int | None] | None = None):
        if not models or len(eval_sizes) != len(models):
            raise InputError("give at least one model, and one evaluation size per model")
        weights = list(weights) if weights is not None else [1.0] * len(models)
        if len(weights) != len(models) or sum(weights) <= 0:
            raise InputError(f"{len(weights)} weights for {len(models)} models")
        self.models = [m.eval() for m in models]
        self.eval_sizes = [int(s) for s in eval_sizes]
        self.weights = [w / sum(weights) for w in weights]
        self.views = parse_tta(tta)
        self.frame_size = frame_size or self.eval_sizes[0]
        self.config = config
        self.device = torch.device(device)
        self.precision = precision
        #: Per model, how its letterbox is padded: each side to a multiple of it, or None to a square (the default,
        #: as the kit trains); each checkpoint says its own (:attr:`kit.model.checkpoint.Checkpoint.pad_multiple`).
        self.pad_multiples = list(pad_multiples) if pad_multiples is not None else [None] * len(models)
        if len(self.pad_multiples) != len(models):
            raise InputError(f"{len(self.pad_multiples)} pad multiples for {len(models)} models")

    @classmethod
    def load(cls, checkpoints: Sequence[str | Path], weights: Sequence[float] | None = None,
             tta: str | Sequence[str] | None = None, frame_size: int | None = None,
             config: PostprocessConfig | None = None, device: str | None = None, precision: str = "fp32",
             backend: str = "auto") -> Predictor:
        """Checkpoints (each with its own backbone and evaluation size); the first one's postprocess settings.

        On ONNX Runtime (``backend="onnxruntime"``, or ``"auto"`` for fp32 on a CPU) each checkpoint runs as its
        exported inference graph (:mod:`kit.inference.onnx_backend`, exported once per checkpoint file and
        cached); files exported by ``python -m kit export`` (``.onnx``) load on that backend whichever is asked.
        """
        if not checkpoints:
            raise InputError("give at least one checkpoint")
        device = device or ("cuda" if torch.cuda.is_available() and backend in ("auto", "torch") else "cpu")
        backend = resolve_backend(backend, device, precision)
        models, sizes, settings, pads = [], [], [], []
        for path in checkpoints:
            exported = Path(path).suffix == ".onnx"
            if exported or backend == "onnxruntime":
                from kit.inference.onnx_backend import OnnxModel, cached_export  # deferred: onnx and onnxruntime

                onnx_model = OnnxModel(Path(path) if exported else cached_export(path))
                models.append(onnx_model)
                sizes.append(onnx_model.eval_size)
                settings.append(onnx_model.postprocess)
                pads.append(onnx_model.pad_multiple)
            else:
                loaded = Checkpoint.load(path, device)
                models.append(loaded.build_model(device))
                sizes.append(loaded.eval_size)
                settings.append(loaded.postprocess)
                pads.append(loaded.pad_multiple)
        return cls(models, sizes, config or settings[0], weights, tta, frame_size, device, precision, pads)

    @torch.no_grad()
    def prob_map(self, image: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        """The averaged probability map in the common frame (its valid region) and that frame's scale."""
        height, width = image.shape[:2]
        frame = letterbox_size(width, height, self.frame_size)
        scale = (frame[0] / width, frame[1] / height)
        total = np.zeros((frame[1], frame[0]), np.float32)
        for model, model_size, weight, pad in zip(self.models, self.eval_sizes, self.weights, self.pad_multiples):
            for view, prob in zip(self.views, self._view_maps(model, model_size, pad, image)):
                resized = cv2.resize(view.inverse(prob), frame, interpolation=cv2.INTER_LINEAR)
                total += weight / len(self.views) * resized
        return total, scale

    def _view_maps(self, model: torch.nn.Module, model_size: int, pad_multiple: int | None,
                   image: np.ndarray) -> list[np.ndarray]:
        """Each view's map, cropped to its valid region, still in the view's orientation."""
        tensors, valid = [], []
        for view in self.views:
            viewed = np.ascontiguousarray(view.forward(image))
            size = max(32, round(model_size * view.scale))
            tensor, _ = image_tensor(viewed, size, model, pad_multiple)
            tensors.append((tensor.shape, tensor))
            valid_w, valid_h = letterbox_size(viewed.shape[1], viewed.shape[0], size)
            valid.append((valid_h, valid_w))
        maps = []
        for shape in dict.fromkeys(s for s, _ in tensors):  # one batch per input shape
            group = [t for s, t in tensors if s == shape]
            batch = (group[0] if len(group) == 1 else torch.cat(group)).to(self.device)  # one view: no copy
            with autocast(self.device, self.precision):
                probs = model(batch)["prob"][:, 0].float().cpu().numpy()
            maps.extend(zip([i for i, (s, _) in enumerate(tensors) if s == shape], probs))
        maps.sort(key=lambda item: item[0])
        return [prob[: valid[i][0], : valid[i][1]] for i, prob in maps]

    def predict(self, image: np.ndarray) -> tuple[list[np.ndarray], list[float]]:
        """Polygons (original image coordinates) and scores for one RGB image."""
        prob, scale = self.prob_map(image)
        height, width = image.shape[:2]
        return postprocess(prob, scale, (width, height), self.config)


def predict_image(model: torch.nn.Module, image: np.ndarray, size: int, config: PostprocessConfig | None = None,
                  device: str | torch.device = "cpu",
                  pad_multiple: int | None = None) -> tuple[list[np.ndarray], list[float]]:
    """Polygons and scores of one model on one RGB image, no TTA (the torch model; padded as Predictor pads)."""
    tensor, scale = image_tensor(image, size, model, pad_multiple)
    with torch.no_grad():
        prob = model.eval()(tensor.to(device))["prob"][0, 0].float().cpu().numpy()
    height, width = image.shape[:2]
    return postprocess(prob, scale, (width, height), config)


def predict(predictor: Predictor, images: str | Path | Iterable[ImageRecord],
            progress: bool = True) -> list[ImageRecord]:
    """Predictions as records (competition schema via :func:`kit.data.write_annotations`); scores kept per word."""
    out = []
    for record in tqdm(image_records(images), desc="predict", disable=not progress):
        polygons, scores = predictor.predict(read_image(record.path))
        words = [Word(f"{i + 1:04d}", p, extra={"score": round(s, 6)})
                 for i, (p, s) in enumerate(zip(polygons, scores))]
        out.append(replace(record, words=words, extra={}))
    return out


def evaluate_predictor(predictor: Predictor, records: Sequence[ImageRecord], *, progress: bool = True,
                       per_image: dict[str, ImageResult] | None = None) -> dict[str, float]:
    """CLEval (mean over images) of a predictor on annotated records: scores, split GT words, merging
    detections, and the speed in ms/image (prediction and metric together). ``per_image``, when given,
    receives each image's result (for paired comparisons, :mod:`kit.evaluation.significance`)."""
    accumulator = CLEvalAccumulator()
    start = time.perf_counter()
    for record in tqdm(records, desc="evaluate", disable=not progress):
        polygons, _ = predictor.predict(read_image(record.path))
        accumulator.update(record.name, record.polygons(), polygons)
    elapsed = time.perf_counter() - start
    result = accumulator.compute()
    if per_image is not None:
        per_image.update(result.per_image)
    return {**result.scores(), "split_words": sum(r.num_splitted for r in result.per_image.values()),
            "merging_boxes": sum(r.num_merged for r in result.per_image.values()),
            "ms_per_image": 1000 * elapsed / max(len(records), 1)}


@torch.no_grad()
def measure_inference(checkpoint: str | Path, size: int | None = None, repeats: int = 10,
                      device: str | None = None) -> dict[str, float]:
    """Inference ms/image (network forward at ``size``, batch 1, after warm-up) and peak memory in MB."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    loaded = Checkpoint.load(checkpoint, device)
    model, size = loaded.build_model(device), size or loaded.eval_size
    images = torch.randn(1, 3, size, size, device=device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    model(images)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        model(images)
    sync()
    ms = 1000 * (time.perf_counter() - start) / repeats
    memory = peak_memory_mb(torch.device(device))
    return {"ms_per_image": ms, "inference_memory_mb": memory, "size": size, "device": device}


def command(args: argparse.Namespace) -> None:
    """``python -m kit predict``: a folder of images to a predictions JSON (``--out``) and/or the leaderboard CSV
    (``--csv``, checked before it replaces anything; rows in ``--test-json``'s order, else the folder's)."""
    predictor = Predictor.load(args.ckpt, args.weights, args.tta, args.frame_size, precision=args.precision,
                               backend=args.backend)
    overrides = {k: v for k, v in {"thresh": args.thresh, "box_thresh": args.box_thresh,
                                   "unclip_ratio": args.unclip_ratio, "output": args.output}.items() if v is not None}
    predictor.config = replace(predictor.config, **overrides)
    images = read_annotations(args.test_json, args.images)[0] if args.test_json else image_records(args.images)
    records = predict(predictor, images)
    polygons = sum(len(r.words) for r in records)
    if args.out:
        write_text(args.out, json.dumps(to_json_doc(records)))
        print(f"{polygons} polygons on {len(records)} images -> {args.out}")
    if args.csv:
        path, problems = write_checked_submission(records, images, args.csv)
        for problem in problems:
            print(problem)
        print(f"{polygons} polygons on {len(records)} images -> {path} (passes the leaderboard's checks; "
              f"{len(problems)} warning(s))")
