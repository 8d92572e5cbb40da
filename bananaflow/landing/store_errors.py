"""One table for what a failed store call means, whichever store it was: S3 (botocore) or
Cloud Storage (google-cloud-storage / google-api-core / google-auth).

Each SDK's exception is reduced to the names it answers to (its exception classes, the
service's error code, the HTTP status) and looked up in ``FAILURES``: the first row that
matches says which ``StorageError`` the run reports, in the service's own words (which
variables hold the credentials, what to grant). Nothing here imports either SDK, so a run on
one store never loads the other's client.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bananaflow.errors import StorageError
from bananaflow.secrets import excerpt

__all__ = ["FAILURES", "GCS", "S3", "Failure", "Service", "exception_names", "storage_failure"]


@dataclass(frozen=True)
class Service:
    """How a store names itself and its fixes in messages."""

    name: str
    scheme: str
    endpoint: str
    set_credentials: str
    check_credentials: str
    grant_access: str


S3 = Service(
    name="S3",
    scheme="s3",
    endpoint="the S3 endpoint",
    set_credentials="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or an AWS profile)",
    check_credentials="check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
    grant_access="check the bucket policy or keys",
)
GCS = Service(
    name="Cloud Storage",
    scheme="gs",
    endpoint="storage.googleapis.com",
    set_credentials="set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, run "
    "`gcloud auth application-default login`, or run on Google Cloud with a service account",
    check_credentials="check GOOGLE_APPLICATION_CREDENTIALS (a deleted key or a revoked login)",
    grant_access="grant the service account roles/storage.objectAdmin on the bucket",
)


@dataclass(frozen=True)
class Failure:
    """A row: the S3 names and the Cloud Storage names that mean it, and the message."""

    kind: str
    s3: frozenset[str]
    gcs: frozenset[str]
    message: str


def _row(kind: str, s3: Iterable[str], gcs: Iterable[str], message: str) -> Failure:
    return Failure(kind, frozenset(s3), frozenset(gcs), message)


#: First match wins. Names are exception class names anywhere in the exception's MRO (or
#: its cause's, for a retry that gave up), the service's error code, or the HTTP status.
FAILURES: tuple[Failure, ...] = (
    _row("no_credentials", ["NoCredentialsError"], ["DefaultCredentialsError"],
         "no {service} credentials to {action} {where}: {set_credentials}"),
    _row("unreachable",
         ["EndpointConnectionError", "ConnectionClosedError", "ConnectTimeoutError"],
         ["ConnectionError", "ConnectTimeout", "ConnectionRefusedError", "RemoteDisconnected"],
         "cannot reach {service} at {endpoint}: is the server running?"),
    _row("timeout", ["ReadTimeoutError"], ["ReadTimeout", "Timeout", "DeadlineExceeded"],
         "{service} at {endpoint} timed out during {action} {where}"),
    _row("bad_credentials",
         ["InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"],
         ["Unauthorized", "RefreshError", "401"],
         "{service} at {endpoint} refused the credentials ({code}) to {action} {where}: {check_credentials}"),
    _row("denied", ["AccessDenied", "403"], ["Forbidden", "403"],
         "{service} denied access ({code}) to {action} {where}: {grant_access}"),
    _row("no_bucket", ["NoSuchBucket"], ["NoSuchBucket"],
         "bucket '{bucket}' does not exist at {endpoint}; create it (ensure_bucket)"),
    _row("not_found", ["NoSuchKey", "404", "NotFound"], ["NotFound", "404"], "{where} does not exist"),
)


def exception_names(exc: BaseException, *extra: str) -> set[str]:
    """The class names ``exc`` answers to, with ``extra`` (an error code, a status)."""
    return {cls.__name__ for cls in type(exc).__mro__} | {name for name in extra if name}


def storage_failure(
    service: Service,
    names: set[str],
    *,
    action: str,
    bucket: str,
    key: str | None = None,
    endpoint: str = "",
    code: str = "",
    detail: str = "",
    grant: str = "",
) -> StorageError:
    """The ``StorageError`` the table gives for ``names``; ``grant`` replaces the service's
    generic access fix (Cloud Storage names the missing permission)."""
    where = f"{service.scheme}://{bucket}/{key}" if key is not None else f"bucket '{bucket}'"
    column = "s3" if service is S3 else "gcs"
    fields = {
        "service": service.name, "action": action, "where": where, "bucket": bucket,
        "endpoint": endpoint or service.endpoint, "code": code or "?", "set_credentials": service.set_credentials,
        "check_credentials": service.check_credentials, "grant_access": grant or service.grant_access,
    }
    for failure in FAILURES:
        if names & getattr(failure, column):
            return StorageError(failure.message.format(**fields), kind=failure.kind)
    what = f"{code} {excerpt(detail, 200)}".strip() if code else excerpt(detail, 200)
    return StorageError(f"{service.name} could not {action} {where}: {what}".rstrip(": "))
