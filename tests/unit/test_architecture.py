"""The rules of the code's shape, checked rather than remembered.

- the engine imports no Prefect and its subpackages are layered (import-linter, contracts in
  pyproject.toml);
- nothing imports in a cycle, counting imports inside functions, engine and Prefect side alike;
- the Prefect side is layered: deployments over flows over tasks over blocks;
- flows stay thin (no function over 60 lines, no flow over 8 parameters), no function over 80
  lines outside the simulator;
- ruff is clean; the wheel installs no generic top-level package (only bananaflow*).
"""
from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.paths import ROOT

BIN = Path(sys.executable).parent
#: Folders of the Prefect side and the import name each is installed under.
PREFECT_SIDE = {"flows": "bananaflow_prefect.flows", "tasks": "bananaflow_prefect.tasks",
                "blocks": "bananaflow_prefect.blocks", "deployments": "bananaflow_prefect.deployments"}


def _modules() -> dict[str, Path]:
    """Every module of the engine and the Prefect side, by its import name."""
    found: dict[str, Path] = {}
    folders = {"bananaflow": "bananaflow", **PREFECT_SIDE}
    for folder, name in folders.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([name, *parts])] = path
    return found


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Modules of ours that ``module`` imports anywhere in it (functions included)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            # ``from pkg import submodule`` depends on the submodule, not on what pkg/__init__ imports
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:  # ``from a.b import c``: c may be a function of a.b
                name = name.rpartition(".")[0]
            if name and name != module:
                out.add(name)
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_import_contracts_hold() -> None:
    result = subprocess.run([str(BIN / "lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_no_module_imports_in_a_cycle(graph: dict[str, set[str]]) -> None:
    assert _cycles(graph) == []


def test_the_cycle_check_finds_cycles_through_function_level_imports() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_prefect_side_is_layered(graph: dict[str, set[str]]) -> None:
    order = ["deployments", "flows", "tasks", "blocks"]  # each may import only those after it
    wrong = []
    for module, imported in graph.items():
        for rank, layer in enumerate(order):
            if module.startswith(PREFECT_SIDE[layer]):
                above = [PREFECT_SIDE[name] for name in order[:rank]]
                wrong += [f"{module} -> {dep}" for dep in imported if dep.startswith(tuple(above))]
    assert wrong == []


def _functions(path: Path) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    tree = ast.parse(path.read_text())
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_functions_are_short() -> None:
    too_long = []
    for module, path in _modules().items():
        limit = 60 if module.startswith(PREFECT_SIDE["flows"]) else 80
        if ".testing.simulator" in module:
            continue
        too_long += [f"{module}.{f.name}: {f.end_lineno - f.lineno + 1} lines" for f in _functions(path)
                     if f.end_lineno - f.lineno + 1 > limit]
    assert too_long == []


def test_flows_take_at_most_nine_parameters() -> None:
    """The catalog and at most eight option groups: each group is one section of Prefect's run form."""
    counted = {}
    for path in (ROOT / "flows").glob("*.py"):
        for function in _functions(path):
            if any(isinstance(d, ast.Call) and getattr(d.func, "id", "") == "flow" for d in function.decorator_list):
                args = function.args
                counted[function.name] = len(args.args) + len(args.kwonlyargs)
    assert counted and set(counted) >= {"catalog_to_images", "retry_unfinished", "catalog_sharded"}
    assert {name: n for name, n in counted.items() if n > 9} == {}


def test_ruff_is_clean() -> None:
    result = subprocess.run([str(BIN / "ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


def test_the_wheel_installs_only_bananaflow_packages() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    assert all(name.split(".")[0] in ("bananaflow", "bananaflow_prefect") for name in listed)
    on_disk = {name for name, path in _modules().items() if path.name == "__init__.py"}
    assert on_disk - {"bananaflow_prefect"} <= listed, f"packages missing from pyproject.toml: {on_disk - listed}"
    mapped = config["package-dir"]
    assert {mapped[PREFECT_SIDE[folder]] for folder in PREFECT_SIDE} == set(PREFECT_SIDE)
