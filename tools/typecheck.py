"""mypy over the engine and the Prefect side, each module under the name it is installed as.

``mypy`` alone checks what ``[tool.mypy] files`` lists (``bananaflow``, ``bananaflow_prefect``),
but it cannot see ``flows/``, ``tasks/``, ``blocks/``, ``deployments/`` as
``bananaflow_prefect.*``: the editable install maps them with an import hook, which mypy does not
follow, and checking the folders by path would name them ``flows.*`` and leave every
``bananaflow_prefect.*`` import unresolved. This adds each folder of ``[tool.setuptools]
package-dir`` to mypy's sources under its installed name, then runs mypy as its command line
does (same config, same cache, same output).

Run it from anywhere: ``.venv/bin/python tools/typecheck.py [mypy options]``; the exit code is
mypy's (0 clean, 1 errors, 2 crash or blocker). ``tests/unit/test_types.py`` runs it.
"""
from __future__ import annotations

import os
import sys
import time
import tomllib
from pathlib import Path

from mypy import util
from mypy.fscache import FileSystemCache
from mypy.main import process_options, run_build
from mypy.modulefinder import BuildSource

ROOT = Path(__file__).resolve().parent.parent


def mapped_sources(root: Path) -> list[BuildSource]:
    """Every module of each ``package-dir`` folder, named as the wheel installs it."""
    mapping: dict[str, str] = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    sources = []
    for package, folder in sorted(mapping.items()):
        for path in sorted((root / folder).rglob("*.py")):
            parts = list(path.relative_to(root / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            sources.append(BuildSource(str(path.relative_to(root)), ".".join([package, *parts]), base_dir=str(root)))
    return sources


def main(args: list[str]) -> int:
    os.chdir(ROOT)  # [tool.mypy] files and the cache are relative to the repository
    fscache = FileSystemCache()
    sources, options = process_options(args, fscache=fscache)
    sources += mapped_sources(ROOT)
    formatter = util.FancyFormatter(sys.stdout, sys.stderr, options.hide_error_codes)
    _, messages, blockers = run_build(sources, options, fscache, time.time(), sys.stdout, sys.stderr)
    n_errors, n_notes, n_files = util.count_stats(messages)
    if n_errors or blockers:
        print(formatter.format_error(n_errors, n_files, len(sources), blockers=blockers, use_color=False))
        return 2 if blockers else 1
    print(formatter.format_success(len(sources), use_color=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
