"""Make torchvision importable beside the CPU torch wheel.

timm and segmentation-models-pytorch import torchvision. PyPI's torchvision 0.28.0 (the
release paired with torch 2.13.0) is a CUDA build: beside the CPU torch wheel its C ops
cannot load, and its ``_meta_registrations`` then fails on ``register_fake`` for ops that
were never defined. Defining those two op schemas lets the pure-Python part import; the kit
uses none of torchvision's C ops. Where the ops load (a matching CUDA torch), nothing changes.

``import kit`` only installs :func:`install`'s import hook, which does this the first time
anything imports torchvision (timm, smp, onnx2torch or the user), so importing the kit
itself (and its metric and submission CLIs) does not import torch.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import warnings
from pathlib import Path

_NMS_SCHEMA = "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"


def _ops_load(package_dir: Path) -> bool:
    """True when torchvision's compiled ops load into this torch."""
    import torch

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
    import torch

    for op in ("nms", "qnms"):
        if not torch._C._dispatch_has_kernel(f"torchvision::{op}"):
            torch.library.define(f"torchvision::{op}", _NMS_SCHEMA)
    warnings.filterwarnings("ignore", message="Failed to load '_C' extension")


class _BeforeTorchvision(importlib.abc.MetaPathFinder):
    """Runs :func:`ensure_importable` when torchvision is first imported, then steps aside (finds nothing itself)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "torchvision":
            sys.meta_path.remove(self)
            ensure_importable()
        return None


def install() -> None:
    """Arrange for :func:`ensure_importable` to run just before torchvision's first import; idempotent."""
    if "torchvision" not in sys.modules and not any(isinstance(f, _BeforeTorchvision) for f in sys.meta_path):
        sys.meta_path.insert(0, _BeforeTorchvision())


def prepare_process() -> None:
    """What importing the kit changes in the process, all of it here, idempotent:

    - the torchvision import hook above (:func:`install`; it imports nothing now);
    - huggingface_hub (through timm) imports ``tqdm.auto``, which warns in notebooks without ipywidgets; the
      kit's own progress bars are plain text, so that warning is silenced.
    """
    install()
    warnings.filterwarnings("ignore", message="IProgress not found")
