"""DBNet loss parts: hard negative mining, the two L1 modes, dice, weights, empty images."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kit.loss import LossConfig, balanced_bce, db_loss, dice_loss


def maps(n: int = 2, size: int = 16) -> dict[str, torch.Tensor]:
    gt = torch.zeros(n, 1, size, size)
    gt[:, :, 4:8, 2:14] = 1
    band = torch.zeros_like(gt)
    band[:, :, 2:10, 0:16] = 1
    return {"gt": gt, "mask": torch.ones_like(gt), "thresh_map": 0.3 + 0.4 * band, "thresh_mask": band}


def test_hard_negative_mining_keeps_the_hardest_three_per_positive() -> None:
    gt = torch.tensor([1.0, 0, 0, 0, 0, 0, 0, 0])
    logits = torch.tensor([0.0, 5, 4, 3, -2, -3, -4, -5])
    loss = balanced_bce(logits, gt, torch.ones_like(gt), negative_ratio=3.0)
    each = F.binary_cross_entropy_with_logits(logits, gt, reduction="none")
    assert loss.item() == pytest.approx((each[0] + each[1] + each[2] + each[3]).item() / 4)
    masked = balanced_bce(logits, gt, torch.tensor([1.0, 0, 1, 1, 1, 1, 1, 1]), negative_ratio=3.0)
    assert masked.item() == pytest.approx((each[0] + each[2] + each[3] + each[4]).item() / 4)


def test_no_positives_gives_zero_not_nan() -> None:
    gt = torch.zeros(10)
    assert balanced_bce(torch.randn(10), gt, torch.ones(10), 3.0).item() == 0.0


def test_parts_weights_and_l1_modes() -> None:
    batch = maps()
    torch.manual_seed(0)
    outputs = {"prob_logits": torch.randn(2, 1, 16, 16), "thresh": torch.rand(2, 1, 16, 16),
               "binary": torch.rand(2, 1, 16, 16)}
    parts = db_loss(outputs, batch)
    assert parts["total"].item() == pytest.approx(5 * parts["prob"].item() + 10 * parts["thresh"].item()
                                                  + parts["binary"].item(), rel=1e-6)
    l1 = (outputs["thresh"] - batch["thresh_map"]).abs()
    assert parts["thresh"].item() == pytest.approx((l1 * batch["thresh_mask"]).sum().item()
                                                   / batch["thresh_mask"].sum().item(), rel=1e-5)
    everywhere = db_loss(outputs, batch, LossConfig(thresh_l1="all"))
    assert everywhere["thresh"].item() == pytest.approx(l1.mean().item(), rel=1e-5)
    with pytest.raises(ValueError, match="thresh_l1"):
        LossConfig(thresh_l1="inside")


def test_perfect_prediction_scores_near_zero() -> None:
    batch = maps()
    outputs = {"prob_logits": (batch["gt"] * 2 - 1) * 20, "thresh": batch["thresh_map"], "binary": batch["gt"]}
    parts = db_loss(outputs, batch)
    assert parts["total"].item() < 1e-5
    assert dice_loss(batch["gt"], batch["gt"], batch["mask"]).item() == pytest.approx(0.0, abs=1e-6)
