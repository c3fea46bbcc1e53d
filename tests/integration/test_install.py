"""A non-editable install of the kit works from a project folder: the package carries every room, and the project
root (outputs/, data/, notebooks/) comes from the working folder, not from site-packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from kit.paths import MARKER, PROJECT_ENV, ROOT

pytestmark = pytest.mark.slow  # builds a wheel and runs the kit in a fresh interpreter


def test_a_non_editable_install_finds_its_project_from_the_working_folder(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy, so that the build leaves nothing in the checkout
    shutil.copytree(ROOT / "kit", source / "kit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", source)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # the pinned requirements, already installed beside the test's interpreter: nothing is resolved or downloaded
    (site / "requirements.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    clean = {k: v for k, v in os.environ.items() if k not in (PROJECT_ENV, "PYTHONPATH")}
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", "--ignore-installed", str(source)],
                   check=True, capture_output=True, text=True, env=clean, timeout=600)

    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[tool.kit]\n")
    assert MARKER.search((project / "pyproject.toml").read_text())
    probe = ("import kit, kit.paths, kit.model.factory, kit.training.run, kit.inference.predict; "
             "print(kit.__file__); print(kit.paths.ROOT)")
    where = subprocess.run([str(python), "-c", probe], cwd=project / "notebooks", capture_output=True, text=True,
                           env=clean, timeout=300)
    assert where.returncode == 0, where.stderr
    installed, root = where.stdout.split()
    assert Path(installed).is_relative_to(site), "the kit imported is the installed one, not the checkout"
    assert Path(root) == project.resolve()

    # one command, from a folder below the project: the default data folder lands in the project
    run = subprocess.run([str(python), "-m", "kit", "synth", "--train", "1", "--val", "1", "--test", "0"],
                         cwd=project / "notebooks", capture_output=True, text=True, env=clean, timeout=300)
    assert run.returncode == 0, run.stderr
    jsons = project / "data" / "synth" / "jsons"
    assert (jsons / "train.json").is_file() and (jsons / "val.json").is_file()
    assert not (site / "data").exists() and not (site / "outputs").exists()
