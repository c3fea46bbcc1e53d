"""Test-time augmentation views: a flip or rotation of the original image and a scale of the letterbox size.

Plain NumPy, so command lines can check a ``--tta`` spec before loading any model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from kit.errors import InputError

#: Each view's transform of the image and its inverse on the probability map.
_TRANSFORMS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
    "identity": (lambda a: a, lambda a: a),
    "hflip": (lambda a: a[:, ::-1], lambda a: a[:, ::-1]),
    "vflip": (lambda a: a[::-1], lambda a: a[::-1]),
    "rot90": (lambda a: np.rot90(a, 1), lambda a: np.rot90(a, -1)),
    "rot180": (lambda a: np.rot90(a, 2), lambda a: np.rot90(a, -2)),
    "rot270": (lambda a: np.rot90(a, 3), lambda a: np.rot90(a, -3)),
}
VIEW_NAMES = tuple(name for name in _TRANSFORMS if name != "identity")


@dataclass(frozen=True)
class View:
    """One TTA view: a flip / rotation of the original image and a scale of the letterbox size."""

    name: str = "identity"
    scale: float = 1.0

    def forward(self, image: np.ndarray) -> np.ndarray:
        return _TRANSFORMS[self.name][0](image)

    def inverse(self, prob: np.ndarray) -> np.ndarray:
        return _TRANSFORMS[self.name][1](prob)


def parse_tta(spec: str | Sequence[str] | None) -> list[View]:
    """``"hflip,vflip,scale=0.9,scale=1.1"`` -> the identity view plus those views (scales at identity)."""
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec or []) if s.strip()]
    views = [View()]
    for item in items:
        if item.startswith("scale="):
            try:
                scale = float(item.split("=", 1)[1])
            except ValueError:
                raise InputError(f"TTA view {item!r}: the scale must be a number, e.g. scale=0.9") from None
            if scale <= 0:
                raise InputError(f"TTA view {item!r}: the scale must be positive")
            views.append(View(scale=scale))
        elif item in VIEW_NAMES:
            views.append(View(item))
        elif item != "identity":
            raise InputError(f"unknown TTA view {item!r}; use {', '.join(VIEW_NAMES)} or scale=<factor>")
    return list(dict.fromkeys(views))
