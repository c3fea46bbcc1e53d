"""Inference speed per backend: torch (the kit's model) against ONNX Runtime (the kit's export, and for PP-OCR the
wheel's own file), the network alone and the whole prediction.

Run from the project root: ``python -m bench.backends [--images 5]``. Two models: zero-shot PP-OCRv6 det (the
rapidocr wheel's detector) and DBNet on EfficientNet-Lite0 (ImageNet weights from the wheel, neck of the
``lite0_cpu`` preset; untrained head: speed only). Network: one letterboxed receipt as a (1, 3, S, S) tensor,
best of 5 after a warm-up, at S = 960 and 1280. Prediction: ``Predictor.predict`` (letterbox, network,
postprocess) on the first N SROIE val receipts (the synthetic ones without ``../shared``), mean ms/image,
with the H-mean of both backends' predictions. Both backends run 2 threads. Writes ``bench/results/backends.md``.
"""

from __future__ import annotations

import argparse
import platform
import time

import pandas as pd
import torch

from bench import best_of, markdown, write_results
from kit.data.annotations import load_split, read_image
from kit.data.synth import resolve_data_dir
from kit.evaluation.cleval import evaluate
from kit.inference.onnx_backend import OnnxModel, export_bytes
from kit.inference.predict import Predictor, image_tensor
from kit.model.ppocr import bundled_onnx_path
from kit.paths import ROOT, SYNTH_DIR
from kit.training.config import resolve_config
from kit.training.run import zero_shot_checkpoint

RESULTS = ROOT / "bench" / "results" / "backends.md"
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=5, help="receipts predicted end to end per backend")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    data = SROIE if (SROIE / "jsons" / "val.json").is_file() else resolve_data_dir(SYNTH_DIR)
    records = load_split(data, "val")[0][: args.images]
    image = read_image(records[0].path)
    models = {"PP-OCRv6 det (zero-shot)": zero_shot_checkpoint(resolve_config("ppocr_cpu")),
              "DBNet EfficientNet-Lite0": zero_shot_checkpoint(resolve_config("lite0_cpu"))}
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
    network_table, predicted_table = pd.DataFrame(network), pd.DataFrame(predicted)
    lines = [
        "# Inference speed per backend: torch vs ONNX Runtime",
        "",
        f"- network: one receipt ({records[0].name}, {data.name}) letterboxed to S x S, batch 1, best of 5 after a "
        f"warm-up, {THREADS} threads each; torch under `torch.inference_mode`",
        f"- prediction: `Predictor.predict` (letterbox to the checkpoint's evaluation size, network, postprocess) on "
        f"the first {len(records)} {data.name} val receipts, mean ms/image; H-mean of those predictions (the lite "
        "DBNet's head is untrained: its H-mean means nothing, its speed does)",
        f"- machine: {platform.machine()}, {torch.get_num_threads()} torch threads, no GPU; command: "
        "`python -m bench.backends`",
        "",
        "## Network alone",
        "",
        *markdown(network_table, ["model", "size", "backend", "ms", "torch_over_this"]),
        "",
        "## Whole prediction",
        "",
        *markdown(predicted_table, ["model", "backend", "size", "ms_per_image", "hmean"]),
    ]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
