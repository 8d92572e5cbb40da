"""``bananaflow doctor``: check a setup before a night's run, each check with a line and a fix.

Same provider and store options as ``run`` (the provider from the environment, ``--bucket``
and ``--prefix`` for the store, ``--model``). Checks: the model id (known, not shut down),
the endpoint (reachable; a proxy's HTML page or a TLS interception is named), the credential
(a free model-metadata call, no image made), the bucket (write, read and delete a probe
object), the Prefect server when ``PREFECT_API_URL`` is set, Redis when
``BANANAFLOW_REDIS_URL`` is set, and the quota scope the run will meter. Exit 0 when every
check passes, 1 otherwise. Nothing printed carries a secret: every line passes ``redact``.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import uuid
from collections.abc import Callable

from bananaflow.cli.launch import EXIT_ITEMS_FAILED, EXIT_OK
from bananaflow.errors import BananaflowError
from bananaflow.providers.diagnose import Finding, check_model_id, probe_provider
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import redact


def add_doctor_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check provider, credential, model, bucket, Prefect and Redis before a run")
    p.add_argument("--bucket", help="bucket a run would use, S3 or gs://bucket (probe object written, read and deleted)")
    p.add_argument("--prefix", default=None, help="key prefix (default: the one in --bucket, else bananaflow)")
    p.add_argument("--model", help="model id (default: BANANAFLOW_MODEL or gemini-3-pro-image)")


def cmd_doctor(args: argparse.Namespace) -> int:
    findings: list[Finding] = []
    settings = _provider(args, findings)
    model = args.model or (settings.model if settings else None) or os.environ.get("BANANAFLOW_MODEL") or ""
    if not model:
        from bananaflow.providers.models import default_model_id

        model = default_model_id()
    findings.append(check_model_id(model))
    if settings is not None:
        findings.extend(asyncio.run(probe_provider(settings, model)))
        findings.append(_quota_scope(settings, model))
    findings.append(_guard("bucket", lambda: _bucket(args.bucket, args.prefix)))
    if os.environ.get("PREFECT_API_URL"):
        findings.append(_guard("prefect", _prefect))
    if os.environ.get("BANANAFLOW_REDIS_URL"):
        findings.append(_guard("redis", _redis))
    for finding in findings:
        mark = "ok  " if finding.ok else "FAIL"
        print(redact(f"{mark} {finding.name:<10} {finding.line}"))
        if not finding.ok and finding.fix:
            print(redact(f"     {'':<10} fix: {finding.fix}"))
    failed = sum(not f.ok for f in findings)
    print(f"{len(findings) - failed} of {len(findings)} checks passed")
    return EXIT_OK if not failed else EXIT_ITEMS_FAILED


def _provider(args: argparse.Namespace, findings: list[Finding]) -> ProviderSettings | None:
    try:
        settings = ProviderSettings.from_env(model=args.model)
    except BananaflowError as exc:
        findings.append(Finding("provider", False, exc.message, "set the variables the message names (see docs/running.md)"))
        return None
    where = f"project {settings.project}, location {settings.location}" if settings.kind == "vertex" else settings.auth_style
    findings.append(Finding("provider", True, f"{settings.kind} at {settings.base_url} ({where})"))
    return settings


def _guard(name: str, check: Callable[[], Finding]) -> Finding:
    try:
        return check()
    except BananaflowError as exc:
        return Finding(name, False, exc.message, _FIXES.get(name, ""))
    except Exception as exc:  # a check must report, never crash the others
        return Finding(name, False, f"{type(exc).__name__}: {redact(str(exc))[:200]}", _FIXES.get(name, ""))


_FIXES = {
    "bucket": "check AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the bucket policy "
              "(s3:PutObject, s3:GetObject, s3:DeleteObject, s3:ListBucket); for gs:// buckets "
              "GOOGLE_APPLICATION_CREDENTIALS and roles/storage.objectAdmin on the bucket",
    "prefect": "start the server (`bananaflow up` or `prefect server start`) or fix PREFECT_API_URL (ends in /api)",
    "redis": "start Redis or fix BANANAFLOW_REDIS_URL (redis://host:6379/0); without it limits stay in one process",
}


def _quota_scope(settings: ProviderSettings, model: str) -> Finding:
    from bananaflow.limits.admission import endpoint_label

    shared = "shared through Redis" if os.environ.get("BANANAFLOW_REDIS_URL") else "kept in this process"
    scope = f"{endpoint_label(settings.kind, settings.base_url)}/{model}"
    extra = "; Dynamic Shared Quota: adaptive controller by default" if settings.kind == "vertex" else ""
    return Finding("quota", True, f"limits are metered per scope {scope} ({shared}){extra}")


#: Cloud Storage: the permission each probe step needs. ``GCS_ROLE`` on the bucket grants all four.
GCS_STEP_PERMISSIONS = {
    "list": "storage.objects.list", "write": "storage.objects.create",
    "read": "storage.objects.get", "delete": "storage.objects.delete",
}
GCS_ROLE = "roles/storage.objectAdmin"


def _bucket(bucket: str | None, prefix: str | None) -> Finding:
    if not bucket:
        return Finding("bucket", False, "no bucket given", "pass --bucket (the bucket `run` would use)")
    from bananaflow.errors import StorageError
    from bananaflow.landing.destination import open_store

    store = open_store(bucket, prefix, default_prefix="bananaflow")
    key = store.key(f".bananaflow-doctor-{uuid.uuid4().hex[:12]}")
    payload = b"bananaflow doctor probe"
    read: list[bytes] = []
    steps: list[tuple[str, Callable[[], object]]] = [
        ("list", store.ensure_bucket),
        ("write", lambda: store.put_bytes(key, payload, "text/plain")),
        ("read", lambda: read.append(store.get_bytes(key))),
        ("delete", lambda: store.delete(key)),
    ]
    for step, run in steps:
        try:
            run()
        except StorageError as exc:
            if store.scheme != "gs" or exc.kind != "denied":
                raise
            if step == "read":  # the probe was written: do not leave it behind
                with contextlib.suppress(StorageError):
                    store.delete(key)
            return _gcs_denied(store, step, exc)
        if step == "read" and read[0] != payload:
            store.delete(key)
            return Finding("bucket", False, f"{store.uri(key)} read back different bytes",
                           "the endpoint is not a consistent store; check AWS_ENDPOINT_URL_S3 / STORAGE_EMULATOR_HOST")
    where = store.uri("").rstrip("/")
    return Finding("bucket", True, f"{where} at {store.endpoint_url}: wrote, read and deleted a probe object")


def _gcs_denied(store: object, step: str, exc: BananaflowError) -> Finding:
    """A 403 on one probe step: the permission it needed and the role that grants it."""
    bucket = getattr(store, "bucket", "")
    who = getattr(store, "principal", None)
    member = f"serviceAccount:{who}" if who else "serviceAccount:SERVICE_ACCOUNT_EMAIL"
    return Finding(
        "bucket", False,
        f"gs://{bucket}: the {step} step was refused (403, needs {GCS_STEP_PERMISSIONS[step]}): missing role "
        f"{GCS_ROLE} on the bucket" + (f" for {who}" if who else ""),
        f"gcloud storage buckets add-iam-policy-binding gs://{bucket} --member={member} --role={GCS_ROLE}",
    )


def _prefect() -> Finding:
    import httpx

    url = os.environ["PREFECT_API_URL"].rstrip("/")
    response = httpx.get(f"{url}/health", timeout=10.0)
    if response.status_code != 200:
        return Finding("prefect", False, f"{url}/health answered HTTP {response.status_code}", _FIXES["prefect"])
    return Finding("prefect", True, f"server at {url} is healthy")


def _redis() -> Finding:
    import redis

    url = os.environ["BANANAFLOW_REDIS_URL"]
    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        client.ping()
    finally:
        client.close()
    return Finding("redis", True, "answers PING: limits are shared between workers")
