"""Benchmarks: ``python -m bench.NAME`` from the project root; each writes ``bench/results/NAME.md``."""

from __future__ import annotations

import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd


def write_results(path: Path, lines: list[str]) -> None:
    """Write a benchmark's results file and print it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def machine_and_command(module: str) -> str:
    """The results file's line saying where it ran and the command that wrote it (this process's arguments)."""
    import torch  # deferred: the bench package itself stays light

    return (f"- machine: {platform.machine()}, {torch.get_num_threads()} torch threads, no GPU; command: "
            f"`{shlex.join(['python', '-m', module, *sys.argv[1:]])}`")


def markdown(table: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """A results table in Markdown (those of ``columns`` it has): floats to 4 places."""
    from kit.reporting.compare import markdown_table  # deferred: the bench package itself stays light

    return markdown_table(table, columns)


def best_of(runs: int, work: Callable[[], object]) -> float:
    """The best of ``runs`` wall times of ``work()``, in seconds."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best
