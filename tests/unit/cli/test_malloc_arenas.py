"""The run process caps glibc's malloc arenas, and skips it where that makes no sense."""
import sys

import pytest

from bananaflow.cli import main as cli_main
from bananaflow.cli import malloc_arenas


def test_sets_the_arena_cap_on_glibc_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc only")
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").gnu_get_libc_version  # noqa: B018
    except (OSError, AttributeError):
        pytest.skip("not glibc")
    assert malloc_arenas.limit_malloc_arenas() is True


def test_skipped_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(malloc_arenas.sys, "platform", "darwin")
    assert malloc_arenas.limit_malloc_arenas() is False


def test_an_explicit_environment_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert malloc_arenas.limit_malloc_arenas() is False


def test_skipped_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setattr(malloc_arenas.sys, "platform", "linux")

    class Musl:
        mallopt = staticmethod(lambda option, value: 1)

    monkeypatch.setattr(malloc_arenas.ctypes, "CDLL", lambda name: Musl())
    assert malloc_arenas.limit_malloc_arenas() is False


def test_the_cli_caps_arenas_before_running_a_command(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(cli_main, "limit_malloc_arenas", lambda: calls.append("capped") or True)
    with pytest.raises(SystemExit):
        cli_main.main(["--help"])
    assert calls == ["capped"]
