"""README cannot drift from the code: every ``kit.*`` name it mentions resolves, and every ``tests/`` and
``bench/results/`` path it names exists."""

from __future__ import annotations

import importlib
import re

import pytest

from kit.paths import ROOT

README = (ROOT / "README.md").read_text()


def _resolves(name: str) -> bool:
    """Whether dotted ``name`` is a module, or an attribute reached from the longest importable module prefix."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


@pytest.mark.parametrize("name", sorted(set(re.findall(r"`(kit(?:\.\w+)+)", README))))
def test_every_kit_name_in_readme_resolves(name: str) -> None:
    assert _resolves(name), f"README names {name}, which the kit does not have"


def test_every_path_readme_names_exists() -> None:
    paths = set(re.findall(r"\b((?:tests|bench/results)/[\w/.-]+\.(?:py|md))", README))
    paths -= {"bench/results/NAME.md"}  # the benchmarks' naming pattern, not a file
    missing = sorted(p for p in paths if not (ROOT / p).is_file())
    assert paths and not missing, f"README names files that do not exist: {missing}"
