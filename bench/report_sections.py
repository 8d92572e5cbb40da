"""Sections of ``docs/benchmarks.md`` owned by one benchmark each, kept when another rewrites
the file: each sits between ``<!-- section: NAME -->`` and ``<!-- /section: NAME -->``."""
from __future__ import annotations

import re
from pathlib import Path


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"<!-- section: {re.escape(name)} -->.*?<!-- /section: {re.escape(name)} -->\n?", re.S)


def replace_section(path: Path, name: str, title: str, body: str) -> None:
    """Write (or replace) one benchmark's section in ``path``."""
    block = f"<!-- section: {name} -->\n## {title}\n\n{body.rstrip()}\n<!-- /section: {name} -->\n"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = _pattern(name)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    path.write_text(text)


def kept_sections(path: Path) -> str:
    """Every benchmark section of ``path``, for a benchmark that rewrites the rest of the file."""
    if not path.exists():
        return ""
    found = re.findall(r"<!-- section: (\S+) -->", path.read_text())
    text = path.read_text()
    return "".join(_pattern(name).search(text).group(0) for name in found)  # type: ignore[union-attr]
