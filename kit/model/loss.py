"""DBNet loss: BCE with hard negative mining, L1 on the threshold map, dice on the binary map.

All parts are computed in fp32 from the model's logits (BCE-with-logits), so mixed
precision cannot saturate them. Weights default to the competition baseline's 5 / 10 / 1.
The probability map's loss can instead be PaddleOCR's: dice (PP-OCRv3-v5's DBLoss) or dice
plus focal (PP-OCRv6), the focal term from segmentation-models-pytorch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.losses._functional import focal_loss_with_logits

from kit.errors import InputError

EPS = 1e-6
PROB_LOSSES = ("bce", "dice", "dice_focal")


@dataclass
class LossConfig:
    """Weights of the three parts, the probability map's loss, the hard-negative ratio and where the L1 counts."""

    prob_weight: float = 5.0
    thresh_weight: float = 10.0
    binary_weight: float = 1.0
    negative_ratio: float = 3.0
    thresh_l1: str = "band"  # DBNet: inside the dilated border band; "all": every pixel (the baseline's)
    #: "bce": BCE with hard negative mining (DBNet's); "dice": PaddleOCR v3-v5's; "dice_focal": PP-OCRv6's.
    prob_loss: str = "bce"
    focal_alpha: float = 0.25
    focal_gamma: float = 2.5

    def __post_init__(self) -> None:
        if self.thresh_l1 not in ("band", "all"):
            raise InputError(f"thresh_l1 must be 'band' or 'all', got {self.thresh_l1!r}")
        if self.prob_loss not in PROB_LOSSES:
            raise InputError(f"prob_loss must be one of {list(PROB_LOSSES)}, got {self.prob_loss!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def balanced_bce(logits: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor, negative_ratio: float) -> torch.Tensor:
    """BCE over all positives and the hardest ``negative_ratio`` x as many negatives, batch-wide."""
    positive = gt * mask
    negative = (1 - gt) * mask
    n_pos = int(positive.sum().item())
    n_neg = min(int(negative.sum().item()), int(n_pos * negative_ratio))
    loss = F.binary_cross_entropy_with_logits(logits, gt, reduction="none")
    pos_loss = (loss * positive).sum()
    neg_loss = torch.topk((loss * negative).flatten(), n_neg).values.sum() if n_neg else loss.new_zeros(())
    return (pos_loss + neg_loss) / (n_pos + n_neg + EPS)


def dice_loss(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1 - Dice between the approximate binary map and the kernels, on cared-for pixels."""
    intersection = (pred * gt * mask).sum()
    union = (pred * mask).sum() + (gt * mask).sum() + EPS
    return 1 - 2.0 * intersection / union


def masked_focal(logits: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor, alpha: float,
                 gamma: float) -> torch.Tensor:
    """Focal loss (Lin et al.; smp's) averaged over the cared-for pixels."""
    loss = focal_loss_with_logits(logits, gt, gamma=gamma, alpha=alpha, reduction="none")
    return (loss * mask).sum() / (mask.sum() + EPS)


def prob_map_loss(logits: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor, config: LossConfig) -> torch.Tensor:
    """The probability map's loss that ``config.prob_loss`` names."""
    if config.prob_loss == "bce":
        return balanced_bce(logits, gt, mask, config.negative_ratio)
    dice = dice_loss(torch.sigmoid(logits), gt, mask)
    if config.prob_loss == "dice":
        return dice
    return dice + masked_focal(logits, gt, mask, config.focal_alpha, config.focal_gamma)


def db_loss(outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
            config: LossConfig | None = None) -> dict[str, torch.Tensor]:
    """Total and parts (``prob``, ``thresh``, ``binary``), each unweighted but the total.

    Without ``thresh`` in ``outputs`` (a model trained on its probability map alone) the parts
    are ``prob`` and ``binary``, the dice then taken on the probability map itself.
    """
    config = config or LossConfig()
    gt, mask = batch["gt"].float(), batch["mask"].float()
    prob = prob_map_loss(outputs["prob_logits"].float(), gt, mask, config)
    if "thresh" not in outputs:  # a model without a threshold branch: the prob loss and dice on the probability map
        binary = dice_loss(torch.sigmoid(outputs["prob_logits"].float()), gt, mask)
        total = config.prob_weight * prob + config.binary_weight * binary
        return {"total": total, "prob": prob, "binary": binary}
    l1 = (outputs["thresh"].float() - batch["thresh_map"].float()).abs()
    if config.thresh_l1 == "band":
        band = batch["thresh_mask"].float()
        thresh = (l1 * band).sum() / (band.sum() + EPS)
    else:
        thresh = l1.mean()
    binary = dice_loss(outputs["binary"].float(), gt, mask)
    total = config.prob_weight * prob + config.thresh_weight * thresh + config.binary_weight * binary
    return {"total": total, "prob": prob, "thresh": thresh, "binary": binary}
