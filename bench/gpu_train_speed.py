"""Training speed on a GPU: images/s of the training step (forward, DB loss, backward, Adam step) for DBNet on
ConvNeXt-Tiny at 960 px, fp32 against bf16 autocast against channels_last (and both, and torch.compile), batch 8
as in the reports' recipe, with the peak GPU memory of each. Synthetic inputs of the real shapes and DB targets of
the synthetic receipts: the speed of a step does not depend on what the pixels show.

Run on a GPU machine from the project root: ``python -m bench.gpu_train_speed [--steps 20] [--batch 8]``; it
refuses to run without CUDA (a CPU cannot answer the question). Writes ``bench/results/gpu_train_speed.md``.
"""

from __future__ import annotations

import argparse
import platform
import time

import pandas as pd
import torch
from torch.utils.data import default_collate

from bench import markdown, write_results
from kit.data.dataset import TextDetectionDataset
from kit.paths import ROOT
from kit.runtime import Runtime, peak_memory_mb
from kit.training.config import resolve_config
from kit.training.loop import batch_loss, model_for
from kit.training.run import load_records

RESULTS = ROOT / "bench" / "results" / "gpu_train_speed.md"
SETTINGS = {"fp32": {}, "bf16": {"precision": "bf16"}, "channels_last": {"channels_last": True},
            "bf16 + channels_last": {"precision": "bf16", "channels_last": True},
            "bf16 + channels_last + compile": {"precision": "bf16", "channels_last": True, "compile": True}}


def measure(name: str, settings: dict, batch: dict, steps: int, runtime: Runtime) -> dict:
    """Images/s over ``steps`` training steps after 3 warm-up steps (compiling, cuDNN autotuning)."""
    config = resolve_config("convnext_tiny", pretrained=False, **settings)
    torch.manual_seed(0)
    model = model_for(config).to(runtime.device).train()
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if config.compile else model
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    cuda = runtime.device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = batch_loss(forward, batch, config, runtime)["total"]
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    for _ in range(3):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        last = step()
    sync()
    seconds = time.perf_counter() - start
    images = steps * batch["image"].shape[0]
    return {"setting": name, "images_per_s": images / seconds, "ms_per_step": 1000 * seconds / steps,
            "peak_memory_mb": peak_memory_mb(runtime.device), "last_loss": last}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per setting")
    parser.add_argument("--batch", type=int, default=8, help="images per step (the reports': 8)")
    parser.add_argument("--size", type=int, default=960, help="training side (the reports' epochs 4+: 960)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench.gpu_train_speed measures a GPU; this machine has none")
    runtime = Runtime(torch.device("cuda", 0))
    config = resolve_config("convnext_tiny")
    records = load_records(config, announce=False)[0][: args.batch]
    dataset = TextDetectionDataset(records, args.size, None, config.targets)
    batch = default_collate([dataset[i % len(dataset)] for i in range(args.batch)])
    rows = [measure(name, settings, batch, args.steps, runtime) for name, settings in SETTINGS.items()]
    table = pd.DataFrame(rows)
    table["speedup"] = table["images_per_s"] / table.loc[0, "images_per_s"]
    lines = [
        "# Training speed on a GPU: fp32, bf16, channels_last (DBNet ConvNeXt-Tiny)",
        "",
        f"- {torch.cuda.get_device_name(0)}, torch {torch.__version__}, {platform.machine()}; batch {args.batch} at "
        f"{args.size} px, {args.steps} timed steps after 3 warm-up steps; random ConvNeXt-Tiny weights (speed only)",
        "- command: `python -m bench.gpu_train_speed`",
        "",
        *markdown(table, ["setting", "images_per_s", "speedup", "ms_per_step", "peak_memory_mb", "last_loss"]),
    ]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
