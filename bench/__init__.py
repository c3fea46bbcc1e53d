"""Benchmarks: ``python -m bench.NAME`` from the project root; each writes ``bench/results/NAME.md``."""

from __future__ import annotations

from pathlib import Path


def write_results(path: Path, lines: list[str]) -> None:
    """Write a benchmark's results file and print it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
