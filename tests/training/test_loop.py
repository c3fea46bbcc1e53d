"""The training loop's parts: folds, the lr schedules and groups, and the GPU options' loss on a fixed batch."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.utils.data import default_collate

from kit.data.dataset import TextDetectionDataset
from kit.model.factory import build_model
from kit.runtime import Runtime
from kit.training.config import (
    resolve_config,
    steps_per_epoch,
)
from kit.training.loop import batch_loss, build_optimizer, model_for, parameter_groups
from kit.training.run import load_records


class Pretrained(torch.nn.Module):
    """A model with a pretrained part, as DBNet and PPOCRDet have."""

    def __init__(self) -> None:
        super().__init__()
        self.pretrained_part, self.head = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)


def test_folds_hold_out_train_images_optionally_with_val(synth_dir: Path, tmp_path: Path) -> None:
    train, held, _ = load_records(resolve_config(data_dir=str(synth_dir), fold=1, n_folds=3,
                                                    output_dir=str(tmp_path)), announce=False)
    names = {r.name for r in train + held}
    assert len(names) == 6 and all(n.startswith("synth_train") for n in names) and len(held) == 2
    train, held, _ = load_records(resolve_config(data_dir=str(synth_dir), fold=0, n_folds=3,
                                                    folds_include_val=True, output_dir=str(tmp_path)), announce=False)
    assert len(train) + len(held) == 9 and len(held) == 3
    assert (tmp_path / "folds" / f"{synth_dir.name}+val-k3-s42.json").is_file()


def test_cosine_schedule_per_epoch_matches_the_preset() -> None:
    config = resolve_config("hrnet_w44")
    optimizer, scheduler = build_optimizer(torch.nn.Linear(2, 2), config)
    for epoch in range(config.epochs):
        expected = config.eta_min + (config.lr - config.eta_min) * (1 + math.cos(math.pi * epoch / config.t_max)) / 2
        assert optimizer.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-9)
        assert optimizer.param_groups[0]["weight_decay"] == 8.2e-5
        optimizer.step()
        scheduler.step()
    warm_opt, warm = build_optimizer(torch.nn.Linear(2, 2), resolve_config("hrnet_w44", warmup_epochs=2))
    lrs = []
    for _ in range(4):
        lrs.append(warm_opt.param_groups[0]["lr"])
        warm_opt.step()
        warm.step()
    assert lrs[0] == pytest.approx(4.5e-4 / 3) and lrs[1] == pytest.approx(4.5e-4 * 2 / 3)
    assert lrs[2] == pytest.approx(4.5e-4)


def test_per_step_warmup_and_cosine_and_the_pretrained_lr_group() -> None:
    config = resolve_config("ppocr_cpu", lr=1e-3, eta_min=0.0, t_max=2, warmup_epochs=1, lr_interval="step",
                            pretrained_lr_scale=0.1)
    model = Pretrained()
    optimizer, scheduler = build_optimizer(model, config, steps=4)
    new, pretrained = optimizer.param_groups
    assert [id(p) for p in new["params"]] == [id(p) for p in model.head.parameters()]
    assert [id(p) for p in pretrained["params"]] == [id(p) for p in model.pretrained_part.parameters()]
    lrs = []
    for _ in range(12):
        lrs.append((new["lr"], pretrained["lr"]))
        optimizer.step()
        scheduler.step()
    # warm-up over the first epoch's 4 steps from lr / 5, then cosine over t_max x 4 = 8 steps
    assert [a for a, _ in lrs[:5]] == pytest.approx([1e-3 * k / 5 for k in (1, 2, 3, 4)] + [1e-3])
    assert [a for a, _ in lrs[4:]] == pytest.approx([1e-3 * (1 + math.cos(math.pi * k / 8)) / 2 for k in range(8)])
    assert all(b == pytest.approx(a * 0.1) for a, b in lrs)
    assert len(build_optimizer(model, resolve_config())[0].param_groups) == 1  # scale 1: one group
    assert steps_per_epoch(resolve_config(batch_size=4, grad_accum=2), 17) == 3
    assert steps_per_epoch(resolve_config(batch_size=4), 17, world=2) == 3


def test_dbnet_pretrained_group_is_its_encoder() -> None:
    model = build_model("resnet18")
    new, encoder = parameter_groups(model, resolve_config(pretrained_lr_scale=0.5))
    assert {id(p) for p in encoder["params"]} == {id(p) for p in model.encoder.parameters()}
    assert len(new["params"]) + len(encoder["params"]) == len(list(model.parameters()))


@pytest.mark.parametrize(("settings", "tolerance"), [
    ({"channels_last": True}, 1e-4),  # another convolution algorithm: float32 sums in another order
    ({"precision": "bf16"}, 3e-2),  # bf16 keeps 8 bits of mantissa: the loss moves by about a percent
    pytest.param({"compile": True}, 1e-4, marks=pytest.mark.slow),  # inductor compiles C++ for the CPU: a minute
])
def test_gpu_options_give_the_same_loss_on_a_fixed_batch(synth_dir: Path, settings: dict,
                                                         tolerance: float) -> None:
    """What a GPU run switches on (channels_last, bf16 autocast, torch.compile) computes the loss fp32 eager
    computes, on the same batch and weights (relative difference), checked here on the CPU."""
    base = resolve_config("smoke", data_dir=str(synth_dir))
    torch.manual_seed(0)
    model = model_for(base).train()
    records = load_records(base, announce=False)[0][:2]
    dataset = TextDetectionDataset(records, 640, None, base.targets, model.config.mean, model.config.std)
    batch = default_collate([dataset[0], dataset[1]])
    assert batch["gt"].sum() > 0  # 640 px: the Korean receipts' words are positives, not don't-care
    runtime = Runtime(torch.device("cpu"))
    with torch.no_grad():
        reference = batch_loss(model, batch, base, runtime)
        option = resolve_config("smoke", data_dir=str(synth_dir), **settings)
        if option.channels_last:
            model = model.to(memory_format=torch.channels_last)
        forward = torch.compile(model) if option.compile else model
        losses = batch_loss(forward, batch, option, runtime)
    for part, value in reference.items():
        assert abs(float(losses[part]) - float(value)) <= tolerance * abs(float(value)) + 1e-6, part

