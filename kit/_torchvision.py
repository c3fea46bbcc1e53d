"""Make torchvision importable beside the CPU torch wheel.

timm and segmentation-models-pytorch import torchvision. PyPI's torchvision 0.28.0 (the
release paired with torch 2.13.0) is a CUDA build: beside the CPU torch wheel its C ops
cannot load, and its ``_meta_registrations`` then fails on ``register_fake`` for ops that
were never defined. Defining those two op schemas lets the pure-Python part import; the kit
uses none of torchvision's C ops. Where the ops load (a matching CUDA torch), nothing changes.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import torch

_NMS_SCHEMA = "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"


def _ops_load(package_dir: Path) -> bool:
    """True when torchvision's compiled ops load into this torch."""
    for lib in package_dir.glob("_C*"):
        try:
            torch.ops.load_library(str(lib))
            return True
        except (OSError, RuntimeError):
            return False
    return False


def ensure_importable() -> None:
    """Define the op schemas torchvision needs when its C ops cannot load; idempotent."""
    if "torchvision" in sys.modules:
        return
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None or _ops_load(Path(spec.origin).parent):
        return
    for op in ("nms", "qnms"):
        if not torch._C._dispatch_has_kernel(f"torchvision::{op}"):
            torch.library.define(f"torchvision::{op}", _NMS_SCHEMA)
    warnings.filterwarnings("ignore", message="Failed to load '_C' extension")
