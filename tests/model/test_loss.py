"""DBNet loss parts: hard negative mining, the two L1 modes, dice, PaddleOCR's dice and focal, weights, empty images."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kit.model.loss import LossConfig, balanced_bce, db_loss, dice_loss, masked_focal


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


def test_focal_is_lin_et_al_over_cared_for_pixels() -> None:
    torch.manual_seed(1)
    logits, gt = torch.randn(2, 1, 8, 8) * 3, (torch.rand(2, 1, 8, 8) > 0.7).float()
    mask = (torch.rand(2, 1, 8, 8) > 0.2).float()
    p = torch.sigmoid(logits)
    pt = torch.where(gt == 1, p, 1 - p)
    weight = torch.where(gt == 1, torch.tensor(0.25), torch.tensor(0.75))
    each = -weight * (1 - pt) ** 2.5 * torch.log(pt)  # Lin et al. 2017, eq. 5 with alpha-balancing
    expected = (each * mask).sum() / mask.sum()
    assert masked_focal(logits, gt, mask, alpha=0.25, gamma=2.5).item() == pytest.approx(expected.item(), rel=1e-5)


def test_paddleocr_prob_losses() -> None:
    batch = maps()
    torch.manual_seed(0)
    outputs = {"prob_logits": torch.randn(2, 1, 16, 16), "thresh": torch.rand(2, 1, 16, 16),
               "binary": torch.rand(2, 1, 16, 16)}
    gt, mask, logits = batch["gt"], batch["mask"], outputs["prob_logits"]
    dice = db_loss(outputs, batch, LossConfig(prob_loss="dice"))["prob"]
    assert dice.item() == pytest.approx(dice_loss(torch.sigmoid(logits), gt, mask).item(), rel=1e-6)
    both = db_loss(outputs, batch, LossConfig(prob_loss="dice_focal"))["prob"]
    assert both.item() == pytest.approx(dice.item() + masked_focal(logits, gt, mask, 0.25, 2.5).item(), rel=1e-6)
    assert db_loss(outputs, batch)["prob"].item() == pytest.approx(balanced_bce(logits, gt, mask, 3.0).item())
    perfect = {**outputs, "prob_logits": (gt * 2 - 1) * 20}
    assert db_loss(perfect, batch, LossConfig(prob_loss="dice_focal"))["prob"].item() < 1e-5
    with pytest.raises(ValueError, match="prob_loss"):
        LossConfig(prob_loss="focal")
