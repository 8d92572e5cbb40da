"""Stopping the local servers and workers bananaflow starts: SIGTERM, wait, then SIGKILL.

One helper for all of them, because the order matters (the S3 server flushes its volumes and
a worker cancels its flow runs on SIGTERM) and a copy that forgets the SIGKILL leaves an
orphan behind.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time


def stop_process(target: subprocess.Popen | int, wait_s: float = 20.0, *, group: bool = True) -> bool:
    """SIGTERM ``target`` (a child we hold, or a pid recorded by an earlier process), wait
    up to ``wait_s`` for it to go, then SIGKILL. ``group`` signals the whole process group it
    leads (started with ``start_new_session``: a server and what it started); leave it off
    for a child that shares our group. Returns whether there was a process to stop."""
    send = os.killpg if group else os.kill
    pid = target if isinstance(target, int) else target.pid
    if not isinstance(target, int) and target.poll() is not None:
        return False
    try:
        send(pid, signal.SIGTERM)
    except ProcessLookupError:
        if isinstance(target, int):
            return False  # a child we hold has just exited: the wait below reaps it
    if not _wait_gone(target, wait_s, group):
        with contextlib.suppress(ProcessLookupError):
            send(pid, signal.SIGKILL)
        if not isinstance(target, int):
            target.wait(5)
    return True


def _wait_gone(target: subprocess.Popen | int, wait_s: float, group: bool) -> bool:
    if not isinstance(target, int):
        try:
            target.wait(wait_s)
            return True
        except subprocess.TimeoutExpired:
            return False
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(target, os.WNOHANG)  # reap it if it is our own child, or it never goes
        try:
            (os.killpg if group else os.kill)(target, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False
