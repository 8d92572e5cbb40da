"""Each engine package names its public API with ``__all__``, and the name holds.

- every package under ``bananaflow/`` has an ``__all__``;
- every name in it is defined in the ``__init__`` or is a module of the package;
- a module that another package or the Prefect side imports is named in its package's
  ``__all__`` (a module whose name starts with ``_`` is private by name, whoever imports it).
"""
from __future__ import annotations

import ast
from pathlib import Path

from tests.unit.test_architecture import _imports, _modules

#: Packages whose ``__all__`` another change brings (drop a name once it has one).
NOT_YET: set[str] = set()


def _packages() -> dict[str, Path]:
    return {name: path for name, path in _modules().items() if name.startswith("bananaflow.") and path.name == "__init__.py"}


def _declared(init: Path) -> tuple[list[str] | None, set[str]]:
    """``__all__`` (None when absent) and the names the ``__init__`` binds itself."""
    tree = ast.parse(init.read_text())
    exported, bound = None, set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and node.value is not None:
            exported = list(ast.literal_eval(node.value))
        if isinstance(node, ast.If):  # ``if TYPE_CHECKING:`` imports of a package that loads names lazily
            bound |= {(alias.asname or alias.name).split(".")[0] for sub in ast.walk(node)
                      if isinstance(sub, (ast.Import, ast.ImportFrom)) for alias in sub.names}
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        for target in targets:
            if isinstance(target, ast.Name):
                bound.add(target.id)
    return exported, bound


def test_every_engine_package_has_an_all() -> None:
    missing = {name for name, init in _packages().items() if _declared(init)[0] is None}
    assert missing - NOT_YET == set()


def test_every_exported_name_exists() -> None:
    wrong = []
    for name, init in _packages().items():
        exported, bound = _declared(init)
        for item in exported or []:
            if item not in bound and not (init.parent / f"{item}.py").is_file() and not (init.parent / item / "__init__.py").is_file():
                wrong.append(f"{name}.__all__: {item!r}")
    assert wrong == []


def test_modules_used_by_other_packages_are_in_their_packages_all() -> None:
    modules = _modules()
    known = set(modules)
    exported = {name: set(_declared(init)[0] or ()) for name, init in _packages().items()}
    unnamed = set()
    for importer, path in modules.items():
        home = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
        for module in _imports(importer, path, known):
            package, _, leaf = module.rpartition(".")
            if package not in exported or package in NOT_YET or leaf.startswith("_"):
                continue
            inside = home == package or home.startswith(package + ".")
            if not inside and leaf not in exported[package]:
                unnamed.add(f"{module} (imported by {importer})")
    assert not unnamed, "\n".join(sorted(unnamed))


def test_the_public_api_check_finds_an_unnamed_module(tmp_path: Path) -> None:
    init = tmp_path / "__init__.py"
    init.write_text('"""doc"""\nfrom x import y as z\n__all__ = ["z", "mod"]\n')
    assert _declared(init) == (["z", "mod"], {"z", "__all__"})
    init.write_text('"""no __all__"""\n')
    assert _declared(init)[0] is None
