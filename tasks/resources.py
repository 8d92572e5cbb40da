"""The live objects one flow run shares between its task runs in this process.

A rate controller only limits anything if every task thread of a run uses the *same* one,
and clients and stores are expensive to rebuild per task; yet Prefect task parameters should
stay small and serialisable. So the flow registers its resources here under the flow run id
and passes only that id to tasks.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from bananaflow.landing.claims import KeyClaims
from bananaflow.reports.progress import ProgressTracker
from bananaflow.providers.settings import ProviderSettings
from bananaflow.limits.controller import RateController
from bananaflow.generation.retry import RetryPolicy
from bananaflow.landing.spool import Spool
from bananaflow.landing.storage import ImageStore


@dataclass
class RunResources:
    provider_settings: ProviderSettings
    store: ImageStore
    controller: RateController
    policy: RetryPolicy
    spool: Spool | None
    progress: ProgressTracker
    claims: KeyClaims | None = None
    extra: dict[str, object] = field(default_factory=dict)


_lock = threading.Lock()
_runs: dict[str, RunResources] = {}


def register(run_id: str, resources: RunResources) -> None:
    with _lock:
        _runs[run_id] = resources


def get(run_id: str) -> RunResources:
    with _lock:
        try:
            return _runs[run_id]
        except KeyError:
            raise RuntimeError(
                f"no resources registered for run {run_id}: generation tasks must run in the flow's process"
            ) from None


def release(run_id: str) -> None:
    with _lock:
        _runs.pop(run_id, None)
