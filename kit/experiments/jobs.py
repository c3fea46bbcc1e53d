"""``--jobs N`` for searches and sweeps: N worker processes of one kit command on this machine, each on its own
GPU where there are several (``CUDA_VISIBLE_DEVICES``), else sharing the CPU's cores between them.

The workers coordinate through what they share, not through this parent: a search's study storage, a sweep's
ledger under its file lock. So a worker started by hand on another machine (same command, same storage or shared
folder) joins the same work. Each worker's output goes to ``<log_dir>/worker-<i>.log``; the parent waits for all of
them and names the log of any that failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import torch

from kit.errors import InputError
from kit.paths import ROOT

#: The environment variable that tells a worker its index (a search offsets its sampler's seed by it).
WORKER_ENV = "KIT_WORKER"


def without_option(argv: Sequence[str], option: str) -> list[str]:
    """``argv`` without ``option`` and its value (``--jobs 4`` or ``--jobs=4``)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


def worker_env(index: int, jobs: int) -> dict[str, str]:
    """Worker ``index``'s environment: its GPU (round robin over the visible ones), or its share of CPU threads."""
    env = {**os.environ, WORKER_ENV: str(index)}
    gpus = torch.cuda.device_count()
    if gpus:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", ",".join(map(str, range(gpus)))).split(",")
        env["CUDA_VISIBLE_DEVICES"] = visible[index % len(visible)]
    else:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    return env


def run_workers(argv: Sequence[str], jobs: int, log_dir: Path) -> None:
    """Run ``python -m kit *argv`` as ``jobs`` processes at once and wait for all; an error names the failed
    workers, their logs and each log's last line."""
    if jobs < 1:
        raise InputError(f"--jobs must be 1 or more, got {jobs}")
    log_dir.mkdir(parents=True, exist_ok=True)
    logs = [log_dir / f"worker-{i}.log" for i in range(jobs)]
    processes = []
    for index, log in enumerate(logs):
        with open(log, "w", encoding="utf-8") as out:  # the child holds its own copy of the file
            processes.append(subprocess.Popen([sys.executable, "-m", "kit", *argv], stdout=out,
                                              stderr=subprocess.STDOUT, cwd=ROOT, env=worker_env(index, jobs)))
    print(f"{jobs} workers started; their output: {log_dir}/worker-*.log", flush=True)
    codes = [process.wait() for process in processes]
    failed = [(i, code) for i, code in enumerate(codes) if code]
    if failed:
        def last_line(path: Path) -> str:
            lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            return lines[-1] if lines else "(no output)"

        raise InputError("; ".join(f"worker {i} exited with {code} ({logs[i]}: {last_line(logs[i])})"
                                   for i, code in failed))
