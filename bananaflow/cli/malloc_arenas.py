"""Fewer glibc malloc arenas for a run process.

glibc gives each thread that allocates concurrently its own arena (up to 8 per core), and a
run has dozens of threads (task threads, the pump's I/O threads, HTTP clients) passing image
bytes around: every arena keeps its own freed-but-unreturned pages, so peak RSS grew with the
number of items although nothing held them (``bench/flow_memory.py``: 2,000 vs 8,000 items
+13% peak RSS; with two arenas +9%). Two arenas cost no measurable throughput there, since
the run's threads mostly wait on the network.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

#: ``M_ARENA_MAX`` from glibc's ``malloc.h``.
M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas at ``arenas``; call before threads start. Returns whether it
    was set: elsewhere (macOS, musl, Windows) nothing is done and False is returned. An
    explicit ``MALLOC_ARENA_MAX`` in the environment wins (glibc reads it itself)."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 (only glibc has it: musl's mallopt ignores the option)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))
