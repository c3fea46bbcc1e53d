"""Start-up cost of the kit's entry points: what importing them pulls in, and how long a bare import takes.

Run from the project root: ``python -m bench.startup [--before DIR] [--repeats 5]``. For each
entry point, a fresh interpreter imports it ``--repeats`` times (median wall time) and reports
whether torch, timm and segmentation_models_pytorch were imported. ``--before`` measures
another checkout of the kit (e.g. ``git worktree add /tmp/before <rev>``) in the same run and
reports the ratio. Writes ``bench/results/startup.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import write_results
from kit.paths import ROOT

RESULTS = ROOT / "bench" / "results" / "startup.md"
#: Entry points: the package, the two CLIs that need no model, and the training module for contrast.
MODULES = ["kit", "kit.evaluation.cleval_files", "kit.evaluation.leaderboard", "kit.data.annotations",
           "kit.training.run"]
HEAVY = ["torch", "timm", "segmentation_models_pytorch"]
PROBE = "import sys, {module}; print(','.join(m for m in {heavy} if m in sys.modules))"


def measure(root: Path, module: str, repeats: int) -> tuple[float, str]:
    """(median seconds, heavy modules imported) for ``import module`` from ``root`` in a fresh interpreter."""
    times, heavy = [], ""
    for _ in range(repeats):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", PROBE.format(module=module, heavy=HEAVY)], cwd=root,
                             capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(root)})
        times.append(time.perf_counter() - start)
        heavy = out.stdout.strip()
    return statistics.median(times), heavy or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, default=None, help="another checkout to compare against")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for module in MODULES:
        now, heavy = measure(ROOT, module, args.repeats)
        row = f"| `{module}` | {now:.2f} | {heavy} |"
        if args.before:
            before, heavy_before = measure(args.before, module, args.repeats)
            row += f" {before:.2f} | {heavy_before} | {before / now:.1f}x |"
        rows.append(row)
    header = "| import | s (this checkout) | heavy modules imported |"
    rule = "| --- | --- | --- |"
    if args.before:
        header += " s (before) | heavy modules before | before / now |"
        rule += " --- | --- | --- |"
    lines = [
        "# Start-up: what importing the kit's entry points costs",
        "",
        f"- median of {args.repeats} fresh interpreters per row; machine: {platform.machine()}, {os.cpu_count()} cores",
        f"- command: `python -m bench.startup {' '.join(sys.argv[1:])}`",
        "",
        header,
        rule,
        *rows,
    ]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
