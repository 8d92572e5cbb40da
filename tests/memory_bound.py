"""Run a piece of Python in a child process under a memory bound, for tests that a hostile
input is read (or refused) within bounded memory: the child's address space is capped
(``RLIMIT_AS``) so a regression fails fast instead of taking the shared machine, and its
peak resident size is reported back (``VmHWM``) for the test to assert on."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

__all__ = ["Bounded", "run_bounded"]

_PRELUDE = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
outcome = {{"error": ""}}
try:
{body}
except BaseException as exc:
    outcome["error"] = type(exc).__name__ + ": " + str(getattr(exc, "message", exc))[:500]
status = open("/proc/self/status").read()  # VmHWM: this program's own peak (ru_maxrss carries the parent's over exec)
outcome["peak_mb"] = int(status.split("VmHWM:")[1].split()[0]) / 1024
print("BOUNDED " + json.dumps(outcome))
"""


@dataclass
class Bounded:
    """What the child said: the error it ended with ("" if none) and its peak RSS in MB."""

    error: str
    peak_mb: float
    output: str


def run_bounded(code: str, *, address_space_mb: int = 1200, env: dict[str, str] | None = None,
                timeout: float = 120) -> Bounded:
    body = "\n".join("    " + line for line in code.strip().splitlines())
    script = _PRELUDE.format(cap=address_space_mb * 1024 * 1024, body=body)
    merged = {**os.environ, **(env or {})}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout,
                            env=merged)
    line = next((x for x in result.stdout.splitlines() if x.startswith("BOUNDED ")), "")
    if not line:
        raise AssertionError(f"the bounded child died (exit {result.returncode}): {result.stderr[-2000:]}")
    data = json.loads(line.removeprefix("BOUNDED "))
    return Bounded(error=data["error"], peak_mb=data["peak_mb"], output=result.stdout + result.stderr)
