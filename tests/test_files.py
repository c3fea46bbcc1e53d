"""Writes a later step reads: atomic (a failure mid-write keeps the old file) and appends under a lock."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from kit.files import append_row, atomic_path, write_csv, write_text
from kit.paths import expand_checkpoints, latest_run

WRITERS, ROWS = 8, 6


def append_rows(path: str, writer: int) -> None:
    for i in range(ROWS):
        append_row(path, {"run": f"w{writer}-r{i}", "writer": writer, "note": "x" * 200})


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = write_text(tmp_path / "choice.json", '{"name": "old"}')
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text('{"na', encoding="utf-8")
        raise RuntimeError("killed mid-write")
    assert path.read_text(encoding="utf-8") == '{"name": "old"}' and [p.name for p in tmp_path.iterdir()] == [
        "choice.json"]
    write_csv(pd.DataFrame({"a": [1]}), tmp_path / "deep" / "t.csv", index=False)
    assert pd.read_csv(tmp_path / "deep" / "t.csv")["a"].tolist() == [1]


def test_parallel_appends_lose_no_row(tmp_path: Path) -> None:
    """Eight processes append to one runs.csv at once (as parallel notebooks and sweep members do)."""
    path = tmp_path / "runs.csv"
    with ProcessPoolExecutor(WRITERS, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(append_rows, [str(path)] * WRITERS, range(WRITERS)))
    table = pd.read_csv(path)
    assert len(table) == WRITERS * ROWS and table["run"].is_unique
    assert sorted(table["run"]) == sorted(f"w{w}-r{i}" for w in range(WRITERS) for i in range(ROWS))
    assert (table["note"] == "x" * 200).all()


def _checkpoint(path: Path, mtime: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    os.utime(path, (mtime, mtime))
    return path


def test_latest_names_the_run_trained_last(tmp_path: Path) -> None:
    old_best = _checkpoint(tmp_path / "old" / "checkpoints" / "best-epoch=03-val_hmean=0.9000.ckpt", 1000)
    _checkpoint(tmp_path / "old" / "checkpoints" / "last.ckpt", 3000)  # trained last, though its best is older
    new_best = _checkpoint(tmp_path / "new" / "checkpoints" / "best-epoch=00-val_hmean=0.5000.ckpt", 2000)
    assert latest_run(tmp_path) == tmp_path / "old"
    assert expand_checkpoints(["latest:best-*.ckpt", "latest:last.ckpt"], tmp_path) == [
        old_best, tmp_path / "old" / "checkpoints" / "last.ckpt"]
    os.utime(new_best, (4000, 4000))
    assert expand_checkpoints("latest:best-*.ckpt", tmp_path) == [new_best]
    with pytest.raises(FileNotFoundError, match=r"'latest:soup.ckpt' \(.*new/checkpoints/soup.ckpt\)"):
        expand_checkpoints("latest:soup.ckpt", tmp_path)


def test_latest_without_runs_says_how_to_make_one(tmp_path: Path) -> None:
    (tmp_path / "ensemble").mkdir()  # an output folder that is not a run
    with pytest.raises(FileNotFoundError, match="no training run under .* notebook 02"):
        expand_checkpoints(["latest:best-*.ckpt"], tmp_path)
