"""The flows' gate on where a deployment run reads from: a run of a deployment is bounded
to its own catalog's folder and the configured roots; a run started by hand, or a shard
started by a checked scale-out run, is not."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from bananaflow.catalog.locations import ROOTS_ENV
from bananaflow.errors import ConfigurationError
from bananaflow.options import CatalogOptions, RunOptions
from bananaflow_prefect.flows import configure


def _runtime(monkeypatch: pytest.MonkeyPatch, *, deployment_id: str | None, own: str | None, parent: str | None = None) -> None:
    import prefect.runtime

    # the run's parameters (an event's payload) must not count as the deployment's own catalog
    monkeypatch.setattr(prefect.runtime, "deployment",
                        SimpleNamespace(id=deployment_id, parameters={"catalog": "/etc/passwd"}))
    monkeypatch.setattr(configure, "deployment_catalog", lambda deployment: own)
    monkeypatch.setattr(configure, "flow_run", SimpleNamespace(parent_flow_run_id=parent, id="run"))


def test_a_deployment_run_reads_only_its_own_folder_and_the_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ROOTS_ENV, raising=False)
    (tmp_path / "feeds").mkdir()
    _runtime(monkeypatch, deployment_id="d1", own=str(tmp_path / "feeds" / "nightly.csv"))
    configure.check_deployment_inputs(str(tmp_path / "feeds" / "other.csv"), RunOptions())
    with pytest.raises(ConfigurationError, match="is outside the locations this deployment may read"):
        configure.check_deployment_inputs(str(Path.home() / ".pgpass"), RunOptions())
    previous = RunOptions(reading=CatalogOptions(previous_manifest="/etc/passwd"))
    with pytest.raises(ConfigurationError, match="previous manifest /etc/passwd is outside"):
        configure.check_deployment_inputs(str(tmp_path / "feeds" / "other.csv"), previous)
    latest = RunOptions(reading=CatalogOptions(previous_manifest="latest"))
    configure.check_deployment_inputs(str(tmp_path / "feeds" / "other.csv"), latest)
    monkeypatch.setenv(ROOTS_ENV, "/etc")
    configure.check_deployment_inputs("/etc/passwd", RunOptions())  # an operator may widen it


def test_runs_by_hand_and_shards_of_a_checked_run_are_not_bounded_here(monkeypatch: pytest.MonkeyPatch) -> None:
    _runtime(monkeypatch, deployment_id=None, own=None)
    configure.check_deployment_inputs("/srv/anything.csv", RunOptions())
    _runtime(monkeypatch, deployment_id="shard-deployment", own=None, parent="scale-out-run")
    configure.check_deployment_inputs("/srv/anything.csv", RunOptions())
