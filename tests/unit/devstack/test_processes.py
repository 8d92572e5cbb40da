"""The one SIGTERM/wait/SIGKILL helper the local servers, the stack and its workers share."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bananaflow.devstack.processes import stop_process

IGNORES_SIGTERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
SPAWNS_A_CHILD = (
    "import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
    " print(p.pid, flush=True); time.sleep(60)"
)


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def _python(code: str) -> tuple[subprocess.Popen, str]:
    """A child in its own session, and the first line it printed (once it is ready)."""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def test_a_group_stops_with_what_its_leader_started() -> None:
    leader, printed = _python(SPAWNS_A_CHILD)
    grandchild = int(printed)
    assert stop_process(leader, 5.0) is True
    assert leader.returncode is not None
    deadline = time.monotonic() + 5
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(grandchild)


def test_sigkill_after_the_wait_for_a_recorded_pid() -> None:
    proc, _ = _python(IGNORES_SIGTERM)
    started = time.monotonic()
    assert stop_process(proc.pid, 0.3, group=False) is True
    assert 0.3 <= time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while not _gone(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(proc.pid)


def test_nothing_to_stop() -> None:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    assert stop_process(done) is False
    assert stop_process(done.pid, 0.1, group=False) is False
