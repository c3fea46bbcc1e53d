"""Choosing what to submit: candidates compared on validation, thresholds searched, the choice stored.

Notebook 04 builds the candidates from checkpoints (each single model, their weight average
if they share an architecture, the map-averaging ensemble, a cross-backbone hybrid, and the
ensemble with TTA), ranks them on validation with paired intervals against the best, searches
the postprocess thresholds on the best one's cached maps (saying whether the searched setting
beats the previous one beyond noise) and saves that :class:`Choice` as JSON. Notebook 05 and ``python -m
kit reproduce`` predict the test images with the saved choice unless told otherwise, so the
search reaches the submission without anyone copying numbers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from kit.data.annotations import ImageRecord
from kit.errors import InputError
from kit.evaluation.significance import PairedComparison, against_baseline, paired_bootstrap
from kit.files import write_text
from kit.inference.predict import Predictor, evaluate_predictor
from kit.inference.soup import soup, soupable
from kit.inference.threshold_search import CachedMap, best_setting, cache_maps, scores_at, threshold_search
from kit.model.checkpoint import Checkpoint
from kit.model.postprocess import PostprocessConfig
from kit.paths import expand_checkpoints, portable_path, project_path


@dataclass
class Choice:
    """A predictor as data: checkpoints, their weights, TTA views and (once searched) the postprocess settings.

    ``postprocess`` None keeps the first checkpoint's settings; ``scores`` records what the
    choice scored on validation at those settings, for the reader. Saved checkpoint paths inside
    the project are relative to its root, so the file travels with the project.
    """

    name: str
    checkpoints: list[str]
    weights: list[float] | None = None
    tta: str = ""
    postprocess: dict[str, Any] | None = None
    scores: dict[str, float] = field(default_factory=dict)
    #: Where the networks run (:data:`kit.inference.predict.BACKENDS`); "auto": ONNX Runtime on a CPU, torch on a GPU.
    backend: str = "auto"

    def predictor(self, device: str | None = None) -> Predictor:
        predictor = Predictor.load([project_path(p) for p in self.checkpoints], self.weights, tta=self.tta,
                                   device=device, backend=self.backend)
        if self.postprocess is not None:
            predictor.config = PostprocessConfig(**self.postprocess)
        return predictor

    def save(self, path: Path | str) -> Path:
        portable = replace(self, checkpoints=[portable_path(p) for p in self.checkpoints])
        return write_text(path, json.dumps(asdict(portable), indent=1))

    @classmethod
    def load(cls, path: Path | str) -> Choice:
        try:
            return cls(**json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as err:
            raise InputError(f"{path}: not a choice written by notebook 04 ({err})") from err


def candidates(checkpoints: Sequence[str | Path], weights: Sequence[float] | None = None,
               hybrid: Sequence[str | Path] | None = None, tta: str = "hflip",
               soup_path: Path | str | None = None, backend: str = "auto") -> list[Choice]:
    """The candidates notebook 04 compares (checkpoints may be glob patterns), each run on ``backend``.

    Each single checkpoint; with several of one model config, their soup (written to
    ``soup_path``); with several, the map-averaging ensemble (``weights``); the ``hybrid``
    checkpoints as their own ensemble; and the ensemble with ``tta`` views.
    """
    paths = [str(p) for p in expand_checkpoints(checkpoints)]
    weights = list(weights) if weights is not None else None
    out = [Choice(f"single: {Path(p).parent.parent.name}/{Path(p).name}", [p]) for p in paths]
    if len(paths) > 1 and soup_path is not None:
        members = [Checkpoint.load(p) for p in paths]
        if soupable(members):
            out.append(Choice("soup (weight average)", [str(soup(members, paths).save(soup_path))]))
    if len(paths) > 1:
        out.append(Choice("ensemble (map average)", paths, weights))
    if hybrid:
        out.append(Choice("hybrid ensemble", [str(p) for p in expand_checkpoints(hybrid)]))
    if tta:
        out.append(Choice(f"ensemble + TTA ({tta})", paths, weights, tta))
    return [replace(c, backend=backend) for c in out]


def find_candidate(choices: Sequence[Choice], name: str) -> Choice:
    """The candidate called ``name``, else the one whose name contains it (``"zero-shot"``); else an error."""
    exact = [c for c in choices if c.name == name]
    found = exact or [c for c in choices if name in c.name]
    if len(found) != 1:
        what = "no candidate" if not found else f"{len(found)} candidates"
        raise InputError(f"{what} named like {name!r}; candidates: {[c.name for c in choices]}")
    return found[0]


def compare_candidates(choices: Sequence[Choice], records: Sequence[ImageRecord],
                       progress: bool = False, baseline: str | None = None) -> pd.DataFrame:
    """One row per candidate (CLEval P/R/H, splits, merges, ms/image, P-R gap), best H-mean first; fills ``scores``.

    Each row also has its paired difference from ``baseline`` (a candidate's name or part of it, see
    :func:`find_candidate`; default: the best candidate) on these images, with its bootstrap interval
    and verdict (:func:`kit.evaluation.significance.against_baseline`).
    """
    baseline = find_candidate(choices, baseline).name if baseline is not None else None
    rows, per_image = [], {}
    for choice in choices:
        per_image[choice.name] = {}
        choice.scores = evaluate_predictor(choice.predictor(), records, progress=progress,
                                           per_image=per_image[choice.name])
        rows.append({"candidate": choice.name, **choice.scores})
    table = pd.DataFrame(rows)
    table["pr_gap"] = table["precision"] - table["recall"]
    paired = against_baseline(per_image, baseline).drop(columns=["precision", "recall", "hmean"])
    table = table.merge(paired, left_on="candidate", right_index=True, how="left")
    return table.sort_values("hmean", ascending=False, kind="stable").reset_index(drop=True)


@dataclass
class Tuning:
    """What :func:`tune_postprocess` found: the choice with the best setting, the search table, the cached maps,
    and ``gain``: the best setting against the choice's own (the checkpoint's default unless set) on the same
    images. The search picked the best of many settings on these very images, so ``gain`` is optimistic: a
    gain within noise here is no gain; one beyond it still deserves a check on other images."""

    choice: Choice
    search: pd.DataFrame
    maps: list[CachedMap]
    gain: PairedComparison


def tune_postprocess(choice: Choice, records: Sequence[ImageRecord], thresholds: Sequence[float],
                     box_thresholds: Sequence[float], unclip_ratios: Sequence[float | None],
                     workers: int = 1, progress: bool = True) -> Tuning:
    """``choice`` with the best setting of the grid on ``records``, and whether it beats the default setting."""
    predictor = choice.predictor()
    maps = cache_maps(predictor, records, progress=progress)
    table = threshold_search(maps, thresholds, box_thresholds, unclip_ratios, base=predictor.config,
                             workers=workers, progress=progress)
    best_config = replace(predictor.config, **best_setting(table))
    best = table.iloc[0]  # the scores at the chosen setting (the candidate's others were at its old one)
    scores = {k: float(best[k]) for k in ("precision", "recall", "hmean")}
    gain = paired_bootstrap(scores_at(maps, predictor.config), scores_at(maps, best_config),
                            names=("default setting", "searched setting"))
    return Tuning(replace(choice, postprocess=best_config.to_dict(), scores=scores), table, maps, gain)


def resolve_choice(choice_file: Path | str | None, checkpoints: Sequence[str | Path] | str | None = None,
                   weights: Sequence[float] | None = None, tta: str | None = None, backend: str | None = None,
                   **postprocess: float | None) -> Choice:
    """What notebook 05 predicts with: ``checkpoints`` when given, else notebook 04's saved choice.

    Given ``weights``, ``tta`` and postprocess settings (``thresh=0.25``...) override the
    choice's; ``None`` keeps them.
    """
    if checkpoints:
        choice = Choice("given checkpoints", [str(p) for p in expand_checkpoints(checkpoints)],
                        None if weights is None else list(weights), tta or "")
    else:
        path = project_path(choice_file) if choice_file else None
        if path is None or not path.is_file():
            raise FileNotFoundError(f"no saved choice at {path} (notebook 04 writes it): run notebook 04 first, "
                                    "or give checkpoints")
        choice = Choice.load(path)
        choice = replace(choice, weights=choice.weights if weights is None else list(weights),
                         tta=choice.tta if tta is None else tta)
    if backend is not None:
        choice = replace(choice, backend=backend)
    given = {k: v for k, v in postprocess.items() if v is not None}
    if given:
        settings = choice.postprocess or Checkpoint.load(choice.checkpoints[0]).postprocess.to_dict()
        choice = replace(choice, postprocess=PostprocessConfig(**{**settings, **given}).to_dict())
    return choice
