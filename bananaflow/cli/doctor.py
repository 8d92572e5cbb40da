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
    p.add_argument("--bucket", help="S3 bucket a run would use (probe object written, read and deleted)")
    p.add_argument("--prefix", default="bananaflow", help="key prefix (default: %(default)s)")
    p.add_argument("--model", help="model id (default: BANANAFLOW_MODEL or gemini-3-pro-image)")
    p.add_argument("--qa", choices=("on", "off"), default="on",
                   help="check the quality gate's vision judge too, with one tiny call (default: %(default)s)")
    p.add_argument("--qa-model", help="the judge model (default: [defaults] judge_model in models.toml)")


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
        if getattr(args, "qa", "on") != "off":
            judge_settings = settings
            findings.append(_guard("judge", lambda: _judge(judge_settings, getattr(args, "qa_model", None))))
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
    "judge": "pick a judge model this route serves with --qa-model (the [judge_models] of models.toml), "
             "or run with --qa off",
    "bucket": "check AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the bucket policy "
              "(s3:PutObject, s3:GetObject, s3:DeleteObject, s3:ListBucket)",
    "prefect": "start the server (`bananaflow up` or `prefect server start`) or fix PREFECT_API_URL (ends in /api)",
    "redis": "start Redis or fix BANANAFLOW_REDIS_URL (redis://host:6379/0); without it limits stay in one process",
}


def _judge(settings: ProviderSettings, model: str | None) -> Finding:
    """The judge model answers a usable verdict through the run's route (one tiny paid call)."""
    import time

    from bananaflow.quality.build import preflight_judge, probe_judge

    started = time.monotonic()
    asyncio.run(preflight_judge(settings, model))
    answer = asyncio.run(probe_judge(settings, model))
    took = time.monotonic() - started
    return Finding("judge", True, f"{answer.verdict.model} answered a verdict with {len(answer.verdict.checks)} checks "
                                  f"in {took:.1f}s (${answer.charge.cost_usd:.4f})")


def _quota_scope(settings: ProviderSettings, model: str) -> Finding:
    from bananaflow.limits.admission import endpoint_label

    shared = "shared through Redis" if os.environ.get("BANANAFLOW_REDIS_URL") else "kept in this process"
    scope = f"{endpoint_label(settings.kind, settings.base_url)}/{model}"
    extra = "; Dynamic Shared Quota: adaptive controller by default" if settings.kind == "vertex" else ""
    return Finding("quota", True, f"limits are metered per scope {scope} ({shared}){extra}")


def _bucket(bucket: str | None, prefix: str) -> Finding:
    if not bucket:
        return Finding("bucket", False, "no bucket given", "pass --bucket (the bucket `run` would use)")
    from bananaflow.landing.storage import ImageStore

    store = ImageStore(bucket, prefix)
    store.ensure_bucket()
    key = store.key(f".bananaflow-doctor-{uuid.uuid4().hex[:12]}")
    payload = b"bananaflow doctor probe"
    store.put_bytes(key, payload, "text/plain")
    try:
        if store.get_bytes(key) != payload:
            return Finding("bucket", False, f"s3://{bucket}/{key} read back different bytes",
                           "the endpoint is not a consistent S3 store; check AWS_ENDPOINT_URL_S3")
    finally:
        store.delete(key)
    return Finding("bucket", True, f"s3://{bucket} at {store.endpoint_url}: wrote, read and deleted a probe object")


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
