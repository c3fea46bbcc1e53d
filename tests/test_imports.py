"""The kit's import structure stays as designed: rooms import one way, no cycles, light package imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp

from kit.paths import ROOT

KIT = ROOT / "kit"
#: The rooms: every sub-package of the kit.
ROOMS = sorted(f"kit.{p.parent.name}" for p in KIT.glob("*/__init__.py"))


def test_the_layers_contract_is_kept() -> None:
    """import-linter's layers contract in pyproject.toml (the rooms in the pipeline's order)."""
    run = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 kept, 0 broken" in run.stdout


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph ``edges`` (as a path that ends where it starts), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def _import_graph() -> dict[str, set[str]]:
    """Module -> the kit modules it imports, function-local imports included (grimp reads every import)."""
    graph = grimp.build_graph("kit", cache_dir=None)
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def test_no_import_cycles_between_modules_or_rooms() -> None:
    edges = _import_graph()
    assert _cycle(edges) is None, f"module cycle: {' -> '.join(_cycle(edges))}"

    def room(module: str) -> str:
        return next((r for r in ROOMS if module == r or module.startswith(r + ".")), module)

    rooms: dict[str, set[str]] = {}
    for module, imported in edges.items():
        rooms.setdefault(room(module), set()).update(room(m) for m in imported if room(m) != room(module))
    assert _cycle(rooms) is None, f"room cycle: {' -> '.join(_cycle(rooms))}"


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_function_local_kit_imports_say_what_they_defer() -> None:
    """A kit import inside a function is there to defer a heavy dependency, and says so in a comment on it
    (``# deferred: ...``); it never hides a cycle (the cycle test above counts it too)."""
    unmarked = []
    for path in KIT.rglob("*.py"):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("kit"):
                    if "# deferred:" not in lines[inner.lineno - 1]:
                        unmarked.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    assert not unmarked, f"function-local kit imports without a '# deferred: why' comment: {unmarked}"


def test_room_packages_import_no_torch() -> None:
    """Each room's ``__init__`` is a docstring: importing a room (what ``--help`` and the metric CLI pass through)
    pulls in no torch."""
    code = f"import sys, {', '.join(ROOMS)}; print('torch' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "False", run.stderr
    for room in ROOMS:
        init = KIT / Path(*room.split(".")[1:]) / "__init__.py"
        body = ast.parse(init.read_text()).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr), f"{init} should hold its one-line docstring only"


def test_no_architecture_name_is_tested_outside_the_model_room() -> None:
    """What a model family needs is asked of :func:`kit.model.family.family_of`; code outside ``kit/model`` never
    compares an architecture with a detector's name (a second PP-OCR detector must be one registry entry)."""
    from kit.model.family import detector_names

    tested = []
    for path in KIT.rglob("*.py"):
        if KIT / "model" in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                for operand in operands:
                    values = operand.elts if isinstance(operand, (ast.Tuple, ast.List, ast.Set)) else [operand]
                    if any(isinstance(v, ast.Constant) and v.value in detector_names() for v in values):
                        tested.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not tested, f"architecture names tested outside kit/model (ask family_of instead): {tested}"
