"""Receipt text detection competition kit: data, DBNet, training, CLEval, submission."""

from kit._torchvision import ensure_importable as _ensure_torchvision_importable

_ensure_torchvision_importable()
