"""A job with faults, the API key in the URL (``?key=``, the leakiest auth style) and real
S3 credentials: neither secret appears in any log line (ours, httpx's, Prefect's own as read
back from the server), artifact, manifest row, error text, run parameter or object metadata."""
from __future__ import annotations

import asyncio
import logging

import pytest

from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer
from tests.e2e.conftest import products, write_catalog
from tests.flow_params import flow_params

pytestmark = pytest.mark.e2e

API_KEY = "FAKE-LEAKCANARY-0123456789abcdefghijklmn"
FAULTS = {
    "SEC000": ["reset", "ok"],
    "SEC001": ["html_502", "ok"],
    "SEC002": ["bad_base64"] * 30,  # more than every attempt of every chunk retry
    "SEC003": ["truncated_json", "ok"],
    "SEC004": ["429", "503", "ok"],
    "SEC005": ["blocked"],
    "SEC006": ["slow", "ok"],
    "SEC007": ["reset"] * 30,
}


class Collector(logging.Handler):
    """Every record, formatted with its exception text, from loggers that may not
    propagate to the root (Prefect configures some that way)."""

    LOGGERS = ("", "prefect", "bananaflow", "httpx", "httpcore", "botocore", "urllib3", "uvicorn")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []
        self._levels: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def __enter__(self) -> Collector:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.DEBUG)
            logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, level in self._levels.items():
            logging.getLogger(name).removeHandler(self)
            logging.getLogger(name).setLevel(level)


async def prefect_records(flow_run_id: str) -> list[str]:
    """Every log line and artifact of the run, as stored by the Prefect server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId

    async with get_client() as client:
        logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
        run = await client.read_flow_run(flow_run_id)
        tasks = await client.read_task_runs()
    texts = [log.message for log in logs]
    texts += [f"{a.key} {a.description} {a.data}" for a in artifacts]
    texts += [str(run.parameters), str(run.state), str(run.state.message if run.state else "")]
    texts += [f"{t.name} {t.state}" for t in tasks if str(t.flow_run_id) == flow_run_id]
    assert len(logs) > 5 and artifacts, "the scan must see the run's records"
    return texts


def test_no_secret_leaks_anywhere(prefect_api, s3_env, monkeypatch, tmp_path, caplog):
    from bananaflow_prefect.flows.catalog_flow import catalog_to_images

    s3_secret = s3_env.secret_key.reveal()
    monkeypatch.setenv("GEMINI_API_KEY", API_KEY)
    monkeypatch.setenv("BANANAFLOW_AUTH_STYLE", "query")
    monkeypatch.setenv("BANANAFLOW_TIMEOUT_S", "0.5")
    monkeypatch.setenv("BANANAFLOW_SPOOL_DIR", str(tmp_path / "spool"))
    for var in ("GOOGLE_API_KEY", "OPENAI_API_KEY", "BANANAFLOW_PROVIDER"):
        monkeypatch.delenv(var, raising=False)
    caplog.set_level(logging.DEBUG)
    catalog = write_catalog(tmp_path / "catalog.csv", products(10, "SEC") + [{"sku": "", "title": "no sku",
                                                                              "color": "", "material": ""}])
    config = SimulatorConfig(latency_s=(0.01, 0.05), api_key=API_KEY, script={f"model {k}": v for k, v in FAULTS.items()},
                             script_retry_delay=0.2, slow_seconds=1.0)
    with SimulatorServer(config) as sim, Collector() as collected:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", sim.base_url)
        summary = catalog_to_images(**flow_params(catalog=str(catalog), bucket="secrets", prefix="sec", concurrency=4))
        assert sim.stats()["by_outcome"].get("bad_key", 0) == 0, "the key did reach the server"

    # the faults happened: the scan covers error paths, not only the happy one
    assert set(summary["counts"]) == {"failed", "blocked", "succeeded"}
    assert summary["rejected"] == 1
    texts: list[str] = [str(summary)]
    texts += [record.getMessage() for record in caplog.records]
    texts += [caplog.text]  # formatted, with exception text
    texts += collected.lines
    texts += asyncio.run(prefect_records(summary["run_id"]))

    client = s3_env.client()
    listing = client.list_objects_v2(Bucket="secrets", Prefix="sec/", MaxKeys=1000)["Contents"]
    keys = [o["Key"] for o in listing]
    assert any(k.endswith("manifest.csv") for k in keys) and any(k.endswith("rejected.csv") for k in keys)
    for key in keys:
        head = client.head_object(Bucket="secrets", Key=key)
        texts.append(f"{key} {head['Metadata']} {head.get('ContentType')}")
        if key.endswith((".csv", ".parquet")):
            texts.append(client.get_object(Bucket="secrets", Key=key)["Body"].read().decode("utf-8", "replace"))
    texts += [p.read_text() for p in (tmp_path / "spool").rglob("*.json")]

    corpus = "\n".join(texts)
    # the scan saw the transport's own debug lines and Prefect's retry messages
    assert "receive_response_headers" in corpus and "RetryableItemsFailed" in corpus
    assert "key=***" in corpus, "request URLs carrying ?key= were logged, and masked"
    for secret, name in ((API_KEY, "API key"), (s3_secret, "S3 secret key")):
        leaks = [text for text in texts if secret in text]
        assert not leaks, f"{name} leaked in: {leaks[0][:300]}"
    assert "BadResponse" in corpus and "NetworkError" in corpus and "ReadTimeout" in corpus
