"""Writing the files a later step reads, so that a kill mid-write loses nothing.

A write goes to a temporary file beside the target, is flushed to disk and renamed over it: a
run killed while saving leaves the old file (or none), never half of one. Tables that several
processes append to (``outputs/runs.csv``: parallel notebooks, sweep members) are updated under a
file lock (``filelock``, torch's own dependency), so no row is lost or interleaved. Imports
nothing of the kit.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
from filelock import FileLock


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; when the block ends without error the file is synced to
    disk and renamed over ``path`` (atomic on one file system), else removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        if hasattr(os, "O_DIRECTORY"):  # the rename itself survives a power cut once the folder is synced
            folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path | str, text: str) -> Path:
    """``path.write_text(text)`` (UTF-8), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: Path | str, data: bytes) -> Path:
    """``path.write_bytes(data)``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_csv(table: pd.DataFrame, path: Path | str, **options: Any) -> Path:
    """``table.to_csv(path, **options)``, atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, **options)
    return Path(path)


def lock_for(path: Path | str) -> FileLock:
    """The lock that every process updating ``path`` holds while it reads and rewrites it (``path.lock``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path.with_name(path.name + ".lock")))


def append_row(path: Path | str, row: dict[str, Any]) -> None:
    """Append ``row`` to the CSV table at ``path`` (header once; new columns extend it), under its lock."""
    path = Path(path)
    with lock_for(path):
        rows = pd.read_csv(path).to_dict("records") if path.is_file() else []
        write_csv(pd.DataFrame([*rows, row]), path, index=False)
