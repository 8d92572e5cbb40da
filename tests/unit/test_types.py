"""Types are checked, not hoped for.

- mypy (pydantic plugin, config and strict modules in pyproject.toml) reports no error over the
  engine and the Prefect side, the latter under the names it is installed as (tools/typecheck.py);
- a ``type: ignore`` names its error code and says why on the same line;
- the wheel ships ``py.typed``, so code that imports bananaflow gets its types.
"""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from types import ModuleType

from tests.paths import ROOT

TYPECHECK = ROOT / "tools" / "typecheck.py"
CHECKED = ("bananaflow", "bananaflow_prefect", "flows", "tasks", "blocks", "deployments", "tools")
#: ``# type: ignore[code]`` then a comment of its own: why the checker is wrong here.
EXPLAINED_IGNORE = re.compile(r"# type: ignore\[[a-z0-9-]+(, ?[a-z0-9-]+)*\] +# \S")


def _typecheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("typecheck", TYPECHECK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mypy_reports_no_error() -> None:
    result = subprocess.run([sys.executable, str(TYPECHECK)], cwd=ROOT, capture_output=True, text=True)
    errors = [line for line in result.stdout.splitlines() if ": note:" not in line]  # notes: run the tool itself
    assert result.returncode == 0, "\n".join(errors)[-20000:] + result.stderr[-3000:]


def test_the_prefect_side_is_checked_under_its_installed_names() -> None:
    sources = {source.module: source.path for source in _typecheck().mapped_sources(ROOT)}
    assert sources["bananaflow_prefect.flows.catalog_flow"] == "flows/catalog_flow.py"
    assert sources["bananaflow_prefect.tasks"] == "tasks/__init__.py"
    on_disk = {str(path.relative_to(ROOT)) for folder in ("flows", "tasks", "blocks", "deployments")
               for path in (ROOT / folder).rglob("*.py")}
    assert set(sources.values()) == on_disk


def test_every_type_ignore_names_its_code_and_says_why() -> None:
    unexplained = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
                   for folder in CHECKED for path in sorted((ROOT / folder).rglob("*.py"))
                   for number, line in enumerate(path.read_text().splitlines(), 1)
                   if "type: ignore" in line and not EXPLAINED_IGNORE.search(line)]
    assert not unexplained, "\n".join(unexplained)


def test_the_explained_ignore_pattern_tells_a_reason_from_none() -> None:
    assert EXPLAINED_IGNORE.search("x = f()  # type: ignore[arg-type]  # pandas stubs say str")
    assert not EXPLAINED_IGNORE.search("x = f()  # type: ignore[arg-type]")
    assert not EXPLAINED_IGNORE.search("x = f()  # type: ignore  # no code")


def test_the_wheel_ships_py_typed() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for package in ("bananaflow", "bananaflow_prefect"):
        assert (ROOT / package / "py.typed").is_file()
        assert "py.typed" in package_data[package]
