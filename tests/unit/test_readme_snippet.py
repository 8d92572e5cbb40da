"""The README's Python example runs as printed, so the front door cannot rot: the block is
taken from README.md and executed (simulator and in-memory store, no keys, no servers)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.paths import ROOT

PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def readme_python() -> str:
    blocks = PYTHON_BLOCK.findall((ROOT / "README.md").read_text())
    assert len(blocks) == 1, f"README.md should have one python block (the engine from Python), has {len(blocks)}"
    return blocks[0]


def test_the_readme_example_makes_three_images(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)  # the example names examples/catalog.csv, as from a checkout
    exec(compile(readme_python(), str(Path("README.md")), "exec"), {"__name__": "readme_example"})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3, lines
    for line, sku in zip(lines, ("MUG-001", "MUG-002", "MUG-003"), strict=True):
        assert re.fullmatch(rf"{sku} succeeded shop/{sku}/main-[0-9a-f]{{12}}\.png", line), line


def test_the_readme_stays_a_front_door() -> None:
    """Issue 21: the two commands first, under 6,000 characters; tables go to docs/running.md."""
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert first_block and [line.split()[:2] for line in first_block.group(1).splitlines()] == [
        ["make", "demo"], ["make", "test"]]
    assert len(text) < 6000, f"README.md has {len(text)} characters; move reference material to docs/"
    assert "\n|---" not in text, "reference tables belong in docs/running.md"
