"""The command lines' convention: a user error is one line on stderr and exit 2; --debug shows the traceback."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from kit.cli import (
    BACKEND_CHOICES,
    COMMANDS,
    LANGUAGE_CHOICES,
    PRECISION_CHOICES,
    PRUNER_CHOICES,
    SAMPLER_CHOICES,
    USER_ERRORS,
    build_parser,
    main,
)
from kit.data.synth import LANGUAGES
from kit.inference.predict import BACKENDS
from kit.model.checkpoint import Checkpoint
from kit.paths import ROOT
from kit.runtime import PRECISIONS

pytestmark = pytest.mark.slow  # subprocesses that import torch


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("command", [
    ("kit", "metric", "{missing}", "{missing}"),
    ("kit", "submit", "--check", "{missing}", "--test-json", "{missing}"),
    ("kit", "predict", "--ckpt", "{missing}", "--images", "{tmp}", "--out", "{tmp}/p.json"),
    ("kit", "train", "--preset", "no_such_preset"),
    ("kit", "pretrained", "ppocr_det", "--out", "{tmp}"),  # an existing file or folder is never overwritten
    ("kit", "zoo", "--members", "ppocr_v9", "--out", "{tmp}"),  # not in the zoo: said before any scoring
    ("kit", "zoo", "--data-dir", "{missing}"),
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
    for command in COMMANDS:
        assert f"    {command} " in out.stdout or f"    {command}\n" in out.stdout, command
    assert run("kit", "reproduce", "nope").returncode == 2


def test_every_option_has_help_and_help_imports_no_torch() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(commands) == set(COMMANDS)
    for name, sub in commands.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help text"
    for name in COMMANDS:
        code = f"import sys; from kit.cli import main\ntry: main([{name!r}, '--help'])\nexcept SystemExit: pass\n" \
               "print('torch' in sys.modules)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert out.stdout.strip().splitlines()[-1] == "False", (name, out.stderr)


def test_choices_match_the_modules_they_name() -> None:
    assert PRECISION_CHOICES == tuple(PRECISIONS)
    assert BACKEND_CHOICES == BACKENDS and set(LANGUAGE_CHOICES) == set(LANGUAGES)
    from kit.experiments.search import PRUNERS, SAMPLERS

    assert SAMPLER_CHOICES == SAMPLERS and PRUNER_CHOICES == PRUNERS
    from kit.cli import ZOO_PREFIX
    from kit.experiments.zoo import PREFIX

    assert ZOO_PREFIX == PREFIX


@pytest.mark.parametrize(("argv", "message"), [
    (["predict", "--ckpt", "{ckpt}", "--images", "{tmp}", "--out", "p.json", "--weights", "1,2"], "2 weights for 1"),
    (["predict", "--ckpt", "{ckpt}", "--images", "{tmp}", "--out", "p.json", "--tta", "flip"], "unknown TTA view"),
    (["predict", "--ckpt", "{ckpt}", "--images", "{tmp}/none", "--out", "p.json"], "image folder"),
    (["soup", "{tmp}/*.ckpt", "--out", "s.ckpt"], "no checkpoint matches"),
    (["train", "--resume", "{tmp}/last.ckpt"], "checkpoint"),
    (["train", "--set", "lr"], "KEY=VALUE"),
    (["sweep", "--grid", "lr=1e-3"], "non-empty list"),
    (["reproduce", "hrnet_w44", "--data-dir", "{tmp}/none"], "data folder"),
])
def test_arguments_are_checked_before_any_module_loads(argv: list[str], message: str, tiny_checkpoint: Path,
                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib, "import_module", lambda name: pytest.fail(f"{name} imported"))
    with pytest.raises(USER_ERRORS, match=message):
        main([a.format(ckpt=tiny_checkpoint, tmp=tmp_path) for a in argv])


def test_soup_command(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = run("kit", "soup", str(tiny_checkpoint), str(tiny_checkpoint.parent / "last.ckpt"), "--out",
              str(tmp_path / "soup.ckpt"))
    assert out.returncode == 0 and "averaged 2 checkpoints" in out.stdout
    assert len(Checkpoint.load(tmp_path / "soup.ckpt").soup_of) == 2


def test_only_input_errors_are_one_line_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    import kit.cli as cli
    from kit.errors import InputError

    def bad_input(argv: list[str]) -> None:
        raise InputError("data/x: no split 'tets'")

    monkeypatch.setattr(cli, "main", bad_input)
    with pytest.raises(SystemExit) as stopped:
        cli.run_cli("train", [])
    assert stopped.value.code == 2 and "error: data/x: no split 'tets'" in capsys.readouterr().err

    def bug(argv: list[str]) -> None:
        raise ValueError("operands could not be broadcast together with shapes (3,) (4,)")

    monkeypatch.setattr(cli, "main", bug)
    with pytest.raises(ValueError, match="broadcast"):
        cli.run_cli("train", [])
