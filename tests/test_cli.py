"""The command lines' convention: a user error is one line on stderr and exit 2; --debug shows the traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kit.__main__ import SYNTH_COUNTS
from kit.checkpoint import Checkpoint
from kit.paths import ROOT
from kit.synth import DEFAULT_COUNTS

pytestmark = pytest.mark.slow  # subprocesses that import torch


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("command", [
    ("kit.metric", "{missing}", "{missing}"),
    ("kit.submit", "--check", "{missing}", "--test-json", "{missing}"),
    ("kit.predict", "--ckpt", "{missing}", "--images", "{tmp}", "--out", "{tmp}/p.json"),
    ("kit.train", "--preset", "no_such_preset"),
])
def test_user_errors_are_one_line_and_exit_2(command: tuple[str, ...], tmp_path: Path) -> None:
    args = [a.format(missing=tmp_path / "missing.json", tmp=tmp_path) for a in command]
    out = run(*args)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: ")
    debug = run(*args, "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_one_command_family_lists_every_command() -> None:
    out = run("kit", "--help")
    assert out.returncode == 0
    for command in ("synth", "demo", "reproduce", "train", "predict", "metric", "submit", "soup"):
        assert f"    {command} " in out.stdout or f"    {command}\n" in out.stdout, command
    assert run("kit", "reproduce", "nope").returncode == 2


def test_synth_defaults_match_the_generator() -> None:
    assert SYNTH_COUNTS == DEFAULT_COUNTS


def test_soup_command(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = run("kit", "soup", str(tiny_checkpoint), str(tiny_checkpoint.parent / "last.ckpt"), "--out",
              str(tmp_path / "soup.ckpt"))
    assert out.returncode == 0 and "averaged 2 checkpoints" in out.stdout
    assert len(Checkpoint.load(tmp_path / "soup.ckpt").soup_of) == 2
