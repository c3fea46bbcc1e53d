"""Inference speed per backend: torch (the kit's model) against ONNX Runtime (the kit's export, and for PP-OCR the
wheel's own file), the network alone and the whole prediction; the default path against the wheel's file; what
padding to a multiple of 32 instead of a square does; peak memory per backend.

Run from the project root: ``python -m bench.backends [--images 5]``. Two models: zero-shot PP-OCRv6 det (the
rapidocr wheel's detector) and DBNet on EfficientNet-Lite0 (ImageNet weights from the wheel, neck of the
``lite0_cpu`` preset; untrained head: speed only). Network: one letterboxed receipt as a (1, 3, S, S) tensor,
best of 5 after a warm-up, at S = 960 and 1280. Prediction: ``Predictor.predict`` (letterbox, network,
postprocess) on the first N SROIE val receipts (the synthetic ones without ``../shared``), mean ms/image,
with the H-mean of both backends' predictions. Default path: ``Predictor.load(ckpt).prob_map`` (the default
backend, letterbox and normalisation included) against the same letterbox and normalisation feeding the
wheel's file on ONNX Runtime, best of 5 per receipt (alternating). Padding: H-mean of zero-shot PP-OCR on every
val receipt padded to a square and to a multiple of 32, with the paired 95% interval, and the same for the demo's
fine-tuned PP-OCR on the synthetic val receipts when ``python -m kit demo`` has left one in ``outputs/``. Memory:
each (model, backend) in a fresh process, its peak resident size while it predicts the N receipts (ONNX Runtime:
exporting first, or reading the cached export). Both backends run 2 threads. Writes ``bench/results/backends.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from bench import best_of, machine_and_command, markdown, write_results
from kit.data.annotations import load_split, read_image
from kit.data.synth import resolve_data_dir
from kit.evaluation.cleval import evaluate
from kit.evaluation.significance import paired_bootstrap
from kit.inference import onnx_backend
from kit.inference.onnx_backend import OnnxModel, export_bytes
from kit.inference.predict import Predictor, image_tensor
from kit.model.ppocr import STRIDE, bundled_onnx_path
from kit.paths import OUTPUTS, ROOT, SYNTH_DIR
from kit.runtime import peak_memory_mb
from kit.training.config import resolve_config
from kit.training.run import zero_shot_checkpoint

RESULTS = ROOT / "bench" / "results" / "backends.md"
#: The demo's fine-tuned PP-OCR (``python -m kit demo``): trained and validated on square letterboxes.
DEMO_RUN = OUTPUTS / "demo-ppocr" / "checkpoints"
SROIE = ROOT.parent / "shared" / "data" / "sroie"
SIZES = (960, 1280)
THREADS = 2


def _session_runner(path: object) -> object:
    """The wheel's own ONNX file on ONNX Runtime, fed the same array (the reference the issue measured)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = THREADS
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda tensor: session.run(None, {name: tensor.numpy()})


def _network_and_prediction(models: dict, records: list, data: Path) -> tuple[list[dict], list[dict]]:
    """The network alone per backend and size, and the whole prediction per backend (explicit backends)."""
    image = read_image(records[0].path)
    network, predicted = [], []
    for name, checkpoint in models.items():
        torch_model = checkpoint.build_model("cpu").eval()
        runners = {"torch": lambda t, m=torch_model: m(t), "onnxruntime (kit export)": OnnxModel(
            export_bytes(checkpoint), THREADS)}
        if name.startswith("PP-OCR"):
            runners["onnxruntime (wheel's file)"] = _session_runner(bundled_onnx_path())
        for size in SIZES:
            tensor, _ = image_tensor(image, size, torch_model)
            times = {}
            for backend, run in runners.items():
                with torch.inference_mode():
                    run(tensor)
                    times[backend] = 1000 * best_of(5, lambda r=run: r(tensor))
            for backend, ms in times.items():
                network.append({"model": name, "size": size, "backend": backend, "ms": ms,
                                "torch_over_this": times["torch"] / ms})
        gt = {r.name: r.polygons() for r in records}
        for backend in ("torch", "onnxruntime"):
            predictor = Predictor([torch_model if backend == "torch" else runners["onnxruntime (kit export)"]],
                                  [checkpoint.eval_size], checkpoint.postprocess)
            predictor.predict(image)
            start = time.perf_counter()
            with torch.inference_mode():
                found = {r.name: predictor.predict(read_image(r.path))[0] for r in records}
            ms = 1000 * (time.perf_counter() - start) / len(records)
            predicted.append({"model": name, "backend": backend, "size": checkpoint.eval_size, "ms_per_image": ms,
                              "hmean": evaluate(gt, found).hmean})
    return network, predicted


def _default_against_wheel(path: Path, records: list) -> list[dict]:
    """Per receipt: the default path's ``prob_map`` against letterbox + normalisation + the wheel's file."""
    predictor = Predictor.load([path])
    model, size, pad = predictor.models[0], predictor.eval_sizes[0], predictor.pad_multiples[0]
    wheel = _session_runner(bundled_onnx_path())
    rows = []
    for record in records:
        image = read_image(record.path)
        predictor.prob_map(image)
        kit_ms = wheel_ms = float("inf")
        for _ in range(5):  # alternating, so that a slow spell of the machine falls on both
            kit_ms = min(kit_ms, 1000 * best_of(1, lambda: predictor.prob_map(image)))
            wheel_ms = min(wheel_ms, 1000 * best_of(1, lambda: wheel(image_tensor(image, size, model, pad)[0])))
        rows.append({"receipt": record.name, "shape": "x".join(map(str, image.shape[:2])), "kit_ms": kit_ms,
                     "wheel_ms": wheel_ms, "wheel_over_kit": wheel_ms / kit_ms})
    total = {"receipt": "all", "shape": "", "kit_ms": sum(r["kit_ms"] for r in rows),
             "wheel_ms": sum(r["wheel_ms"] for r in rows)}
    return [*rows, {**total, "wheel_over_kit": total["wheel_ms"] / total["kit_ms"]}]


def _padding(name: str, path: Path, data: Path, records: list) -> tuple[list[dict], str]:
    """H-mean and ms/image of a checkpoint on ``records`` padded to a square and to a multiple of 32 (whichever
    it says by default), and the paired test."""
    predictor = Predictor.load([path], backend="onnxruntime")
    default = predictor.pad_multiples[0]
    gt = {r.name: r.polygons() for r in records}
    rows, per_image = [], {}
    for label, multiple in (("square", None), ("multiple of 32", STRIDE)):
        predictor.pad_multiples = [multiple]
        start = time.perf_counter()
        found = {r.name: predictor.predict(read_image(r.path))[0] for r in records}
        ms = 1000 * (time.perf_counter() - start) / len(records)
        result = evaluate(gt, found)
        per_image[label] = result.per_image
        shown = f"{label} (default)" if multiple == default else label
        rows.append({"model": name, "data": data.name, "padding": shown, "images": len(records), "ms_per_image": ms,
                     **result.scores()})
    gain = paired_bootstrap(per_image["square"], per_image["multiple of 32"], names=("square", "multiple of 32"))
    return rows, f"{name}: {gain}"


def _memory(path: Path, backend: str, images: int, fresh_cache: bool) -> dict:
    """In this (fresh) process: peak resident size after loading (with ``fresh_cache``, exporting the graph first),
    and the peak while predicting ``images`` receipts."""
    torch.set_num_threads(THREADS)
    if fresh_cache:
        onnx_backend.EXPORT_CACHE = Path(tempfile.mkdtemp())
    predictor = Predictor.load([path], backend=backend)
    loaded = peak_memory_mb(torch.device("cpu"))
    for record in _records(images):
        predictor.predict(read_image(record.path))
    return {"loaded_mb": loaded, "peak_mb": peak_memory_mb(torch.device("cpu"))}


def _memory_rows(paths: dict[str, Path], images: int) -> list[dict]:
    rows = []
    for name, path in paths.items():
        for backend, fresh in (("torch", False), ("onnxruntime", True), ("onnxruntime", False)):
            run = subprocess.run([sys.executable, "-m", "bench.backends", "--memory", str(path), backend,
                                  "--images", str(images), *(["--fresh-cache"] if fresh else [])],
                                 capture_output=True, text=True, cwd=ROOT, check=True)
            label = backend if backend == "torch" else f"{backend} ({'exported now' if fresh else 'cached export'})"
            rows.append({"model": name, "backend": label, **json.loads(run.stdout.strip().splitlines()[-1])})
    return rows


def _data() -> Path:
    return SROIE if (SROIE / "jsons" / "val.json").is_file() else resolve_data_dir(SYNTH_DIR)


def _records(count: int | None = None) -> list:
    return load_split(_data(), "val")[0][:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=5, help="receipts predicted end to end per backend")
    parser.add_argument("--memory", nargs=2, metavar=("CKPT", "BACKEND"), help=argparse.SUPPRESS)
    parser.add_argument("--fresh-cache", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory:
        print(json.dumps(_memory(Path(args.memory[0]), args.memory[1], args.images, args.fresh_cache)))
        return
    torch.set_num_threads(THREADS)
    data, records = _data(), _records(args.images)
    models = {"PP-OCRv6 det (zero-shot)": zero_shot_checkpoint(resolve_config("ppocr_cpu")),
              "DBNet EfficientNet-Lite0": zero_shot_checkpoint(resolve_config("lite0_cpu"))}
    network, predicted = _network_and_prediction(models, records, data)
    with tempfile.TemporaryDirectory() as folder:
        paths = {name: checkpoint.save(Path(folder) / f"{i}.ckpt") for i, (name, checkpoint) in
                 enumerate(models.items())}
        ppocr = paths["PP-OCRv6 det (zero-shot)"]
        for path in paths.values():
            Predictor.load([path])  # exports once into the cache: the timed and "cached" loads below read it
        against_wheel = _default_against_wheel(ppocr, records)
        padding, gains = _padding("PP-OCRv6 det (zero-shot)", ppocr, data, _records())
        fine_tuned = sorted(DEMO_RUN.glob("best-*.ckpt"))
        if fine_tuned:  # what the default guards against: a model trained on squares, run on other padding
            synth = resolve_data_dir(SYNTH_DIR)
            more, gain = _padding("PP-OCRv6 det fine-tuned (the demo's best)", fine_tuned[-1], synth,
                                  load_split(synth, "val")[0])
            padding, gains = padding + more, [gains, gain]
        else:
            gains = [gains, "(no fine-tuned checkpoint: run `python -m kit demo` first to include one)"]
        memory = _memory_rows(paths, args.images)
    lines = [
        "# Inference speed per backend: torch vs ONNX Runtime",
        "",
        f"- network: one receipt ({records[0].name}, {data.name}) letterboxed to S x S, batch 1, best of 5 after a "
        f"warm-up, {THREADS} threads each; torch under `torch.inference_mode`",
        f"- prediction: `Predictor.predict` (letterbox to the checkpoint's evaluation size, padded as the checkpoint "
        "says: zero-shot PP-OCR to a multiple of 32, the lite DBNet to a square; network, postprocess) on the first "
        f"{len(records)} {data.name} val receipts, mean ms/image; H-mean of those predictions (the lite DBNet's head "
        "is untrained: its H-mean means nothing, its speed does)",
        machine_and_command("bench.backends"),
        "",
        "## Network alone",
        "",
        *markdown(pd.DataFrame(network), ["model", "size", "backend", "ms", "torch_over_this"]),
        "",
        "## Whole prediction",
        "",
        *markdown(pd.DataFrame(predicted), ["model", "backend", "size", "ms_per_image", "hmean"]),
        "",
        "## The default CPU path against ONNX Runtime on the wheel's file (PP-OCRv6 det, 1280 px)",
        "",
        "`Predictor.load(ckpt).prob_map(image)` (default backend; letterbox, normalisation, network, the map "
        "cropped to the receipt) against the same letterbox and normalisation feeding the wheel's "
        "`PP-OCRv6_det_small.onnx` on ONNX Runtime; best of 5 per receipt, the two alternating; "
        "`wheel_over_kit` >= 0.95 is the target.",
        "",
        *markdown(pd.DataFrame(against_wheel), ["receipt", "shape", "kit_ms", "wheel_ms", "wheel_over_kit"]),
        "",
        "## Padding: a square against a multiple of 32 (every val receipt, ONNX Runtime)",
        "",
        "Zero-shot PP-OCR on the real receipts; the demo's fine-tuned PP-OCR (trained and validated on square "
        "letterboxes) on the synthetic ones it was trained for.",
        "",
        *markdown(pd.DataFrame(padding), ["model", "data", "padding", "images", "ms_per_image", "precision",
                                          "recall", "hmean"]),
        "",
        "Paired (multiple of 32 - square):",
        "",
        *[f"- {gain}" for gain in gains],
        "",
        f"## Peak memory (a fresh process per row: loaded, then predicting {args.images} receipts; peak resident "
        "size, VmHWM)",
        "",
        *markdown(pd.DataFrame(memory), ["model", "backend", "loaded_mb", "peak_mb"]),
    ]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
