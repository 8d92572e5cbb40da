"""The Cloud Storage image store: the same store as S3's ``ImageStore``, on ``gs://`` buckets.

``GcsStore`` is an ``ImageStore`` (every caller typed on it takes one unchanged) whose calls go
through Google's own client, ``google-cloud-storage``. Credentials come from Application
Default Credentials like the Vertex route (``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud auth
application-default login``, the metadata server on Google Cloud) or from a service account
given explicitly (a prefect-gcp block); ``STORAGE_EMULATOR_HOST`` points it at an emulator
without credentials, as Google's client does.

What S3 does with ``If-None-Match: *`` Cloud Storage does with ``ifGenerationMatch=0``: a
claim or a conditional image write lands for exactly one writer. Errors go through the one
table in ``bananaflow.landing.store_errors``; a 403 names the permission that was missing and
the role that grants it (``roles/storage.objectAdmin`` on the bucket).

Links for the gallery and write-back feeds are V4 signed URLs: signed locally with a
service-account key, or through the IAM ``signBlob`` API for credentials without a key (the
metadata server; the account then needs ``roles/iam.serviceAccountTokenCreator`` on itself).
Without either, set ``public_base_url`` (a public bucket or a CDN in front of it). On the
emulator, which checks no signature, an unsigned object URL is used when nothing can sign.
"""
from __future__ import annotations

import datetime
import os
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bananaflow.errors import ConfigurationError, StorageError
from bananaflow.landing.keys import normalize_prefix
from bananaflow.landing.storage import ImageStore, ObjectInfo, decode_metadata, encode_metadata
from bananaflow.landing.store_errors import GCS, exception_names, storage_failure

__all__ = [
    "EMULATOR_ENV", "GcsStore", "RETRY_ENV", "gcs_error", "make_gcs_client", "read_gs_uri", "signing_credentials",
]

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
#: How long one call keeps retrying transient failures (429, 5xx, dropped connections).
RETRY_ENV = "BANANAFLOW_GCS_RETRY_S"
_DEFAULT_RETRY_S = 60.0
_TIMEOUT = (10.0, 120.0)  # connect, read: as the S3 client's
_MAX_SIGNED_S = 7 * 24 * 3600  # V4 signed URLs live at most seven days
_CHUNK = 8 * 1024 * 1024  # a file upload holds one 8 MB chunk at a time
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_PERMISSION = re.compile(r"(storage\.[a-zA-Z]+\.[a-zA-Z]+)")
_SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)


def _retry_s(environ: Mapping[str, str] = os.environ) -> float:
    raw = environ.get(RETRY_ENV, "").strip()
    try:
        value = float(raw) if raw else _DEFAULT_RETRY_S
    except ValueError:
        raise ConfigurationError(f"{RETRY_ENV}={raw!r} is not a number of seconds") from None
    return max(0.0, value)


def gcs_error(
    exc: BaseException, action: str, *, bucket: str, key: str | None = None, endpoint: str = "", bucket_level: bool = False
) -> StorageError:
    """The one translation of a google-cloud-storage / api-core / auth exception (rows in
    ``store_errors.FAILURES``). ``bucket_level``: a 404 means the bucket is missing (a listing)."""
    cause: BaseException = exc
    if type(exc).__name__ == "RetryError" and isinstance(getattr(exc, "cause", None), BaseException):
        cause = exc.cause  # type: ignore[attr-defined]  # api-core's RetryError keeps the last failure
    code = str(getattr(cause, "code", "") or "")
    code = code if code.isdigit() else ""
    message = str(getattr(cause, "message", "") or cause)
    names = exception_names(cause, code)
    if code == "404" and (bucket_level or "bucket does not exist" in message.lower()):
        names.add("NoSuchBucket")
    grant = ""
    if code == "403":
        found = _PERMISSION.search(message)
        permission = found.group(1) if found else ""
        grant = GCS.grant_access + (f" (it lacks {permission})" if permission else "")
    return storage_failure(GCS, names, action=action, bucket=bucket, key=key, endpoint=endpoint, code=code,
                           detail=f"{type(cause).__name__}: {message}", grant=grant)


def _pooled(client: Any) -> Any:
    """64 pooled connections per scheme, as the S3 client: many workers upload at once."""
    import requests.adapters

    http = client._http  # the AuthorizedSession google-cloud-storage sends with
    for scheme in ("https://", "http://"):
        http.mount(scheme, requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=64))
    return client


def make_gcs_client(*, credentials: Any = None, project: str | None = None) -> Any:
    """A ``google.cloud.storage.Client``: the emulator's (anonymous) when
    ``STORAGE_EMULATOR_HOST`` is set, else with ``credentials`` or ADC."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.storage import Client

    project = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or None
    emulator = os.environ.get(EMULATOR_ENV)
    try:
        if emulator:
            return _pooled(Client(
                project=project or "bananaflow-local",
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]  # google-auth's class is untyped
                client_options={"api_endpoint": emulator if "://" in emulator else f"http://{emulator}"},
            ))
        return _pooled(Client(project=project, credentials=credentials))
    except Exception as exc:  # ADC found nothing, or a key file that is not one
        raise gcs_error(exc, "open", bucket="(any)") from None


def signing_credentials(info: Mapping[str, Any] | None = None, environ: Mapping[str, str] = os.environ) -> Any:
    """Service-account credentials that can sign URLs locally: ``info`` (a key's JSON), else
    the key file ``GOOGLE_APPLICATION_CREDENTIALS`` names; None when neither is a
    service-account key (a user login, the metadata server: those sign through IAM)."""
    from google.oauth2 import service_account

    if info is None:
        path = environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if not path:
            return None
        try:
            import json

            info = json.loads(Path(path).expanduser().read_text("utf-8"))
        except (OSError, ValueError):
            return None
    if not isinstance(info, Mapping) or info.get("type") != "service_account":
        return None
    try:
        return service_account.Credentials.from_service_account_info(dict(info), scopes=_SCOPES)
    except (ValueError, KeyError):
        return None


def read_gs_uri(uri: str, *, client: Any = None) -> bytes:
    """The bytes of the object at ``gs://bucket/key``; failures are ``gcs_error``'s."""
    bucket, _, key = uri.removeprefix("gs://").partition("/")
    if not uri.startswith("gs://") or not bucket or not key:
        raise StorageError(f"{uri!r} is not gs://bucket/key")
    client = client if client is not None else make_gcs_client()
    try:
        data: bytes = client.bucket(bucket).blob(key).download_as_bytes(timeout=_TIMEOUT)
        return data
    except Exception as exc:
        raise gcs_error(exc, "download", bucket=bucket, key=key, endpoint=_endpoint(client)) from None


def _endpoint(client: Any) -> str:
    return str(getattr(getattr(client, "_connection", None), "API_BASE_URL", "") or "https://storage.googleapis.com")


class GcsStore(ImageStore):
    """One Cloud Storage bucket (and optional prefix) that images and manifests land in."""

    scheme = "gs"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any = None,
        signer: Any = None,
        project: str | None = None,
    ) -> None:
        if not _BUCKET.match(bucket or "") or ".." in bucket:
            raise ConfigurationError(
                f"bucket name {bucket!r} is not valid for Cloud Storage: use 3-63 lower-case letters, digits, "
                "'-', '_' or '.'"
            )
        self.bucket = bucket
        self.prefix = normalize_prefix(prefix)
        self.region = None
        self.client = client if client is not None else make_gcs_client(project=project)
        self._bucket = self.client.bucket(bucket)
        self._signer = signer if signer is not None else signing_credentials()
        self._emulated = bool(os.environ.get(EMULATOR_ENV)) or not self.endpoint_url.startswith("https://")
        from google.cloud.storage.retry import DEFAULT_RETRY

        self._retry = DEFAULT_RETRY.with_timeout(_retry_s())

    def __repr__(self) -> str:
        return f"GcsStore(bucket={self.bucket!r}, prefix={self.prefix!r}, endpoint={self.endpoint_url!r})"

    @property
    def endpoint_url(self) -> str:
        return _endpoint(self.client)

    @property
    def spool_name(self) -> str:
        return f"gs:{self.bucket}"  # ':' is in no S3 bucket name: never the spool of an S3 bucket

    def uri(self, key: str) -> str:
        return f"gs://{self.bucket}/{key}"

    @property
    def principal(self) -> str | None:
        """The service account's e-mail, for messages that name who needs a role."""
        for credentials in (self._signer, getattr(self.client, "_credentials", None)):
            email = getattr(credentials, "service_account_email", None)
            if isinstance(email, str) and "@" in email:
                return email
        return None

    def _error(self, exc: Exception, action: str, key: str | None = None) -> StorageError:
        return gcs_error(exc, action, bucket=self.bucket, key=key, endpoint=self.endpoint_url)

    # -- bucket ------------------------------------------------------------------------
    def ensure_bucket(self) -> None:
        """Create the bucket if it is absent (the emulator, a project owner). Looks with a
        one-object listing, not a bucket read: roles/storage.objectAdmin may list objects
        but not read the bucket's own metadata."""
        try:
            next(iter(self.client.list_blobs(self.bucket, max_results=1, timeout=_TIMEOUT, retry=self._retry)), None)
            return
        except Exception as exc:
            if str(getattr(exc, "code", "")) != "404":
                raise gcs_error(exc, "open", bucket=self.bucket, endpoint=self.endpoint_url, bucket_level=True) from None
        try:
            self.client.create_bucket(self.bucket, timeout=_TIMEOUT)
        except Exception as exc:
            if str(getattr(exc, "code", "")) != "409":  # made by someone else meanwhile
                raise StorageError(
                    f"bucket 'gs://{self.bucket}' does not exist and could not be created "
                    f"({gcs_error(exc, 'create', bucket=self.bucket, endpoint=self.endpoint_url).message}); "
                    f"create it: gcloud storage buckets create gs://{self.bucket} --location=REGION"
                ) from None

    # -- objects -----------------------------------------------------------------------
    def _list_page(self, prefix: str, max_keys: int) -> tuple[list[str], bool]:
        try:
            iterator = self.client.list_blobs(self.bucket, prefix=prefix, page_size=max_keys,
                                              fields="items(name),nextPageToken", timeout=_TIMEOUT, retry=self._retry)
            page = next(iterator.pages, None)
            keys = [blob.name for blob in page] if page is not None else []
        except Exception as exc:
            raise gcs_error(exc, "list", bucket=self.bucket, key=prefix, endpoint=self.endpoint_url,
                            bucket_level=True) from None
        return keys, bool(iterator.next_page_token)

    def _upload(self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str] | None,
                if_absent: bool) -> bool:
        blob = self._bucket.blob(key)
        if metadata:
            blob.metadata = encode_metadata(metadata)
        try:
            blob.upload_from_string(data, content_type=content_type, if_generation_match=0 if if_absent else None,
                                    timeout=_TIMEOUT, retry=self._retry)
        except Exception as exc:
            if if_absent and str(getattr(exc, "code", "")) == "412":
                return False
            raise self._error(exc, "upload", key) from None
        return True

    def put_image(
        self,
        key: str,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        *,
        if_absent: bool = False,
    ) -> bool:
        """Upload an image; with ``if_absent`` only if no object has the key
        (``ifGenerationMatch=0``): False when one was already there."""
        return self._upload(key, data, content_type, metadata or {}, if_absent)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self._upload(key, data, content_type, None, False)

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Upload a local file in 8 MB chunks (resumable), never whole in memory."""
        blob = self._bucket.blob(key, chunk_size=_CHUNK)
        try:
            blob.upload_from_filename(str(path), content_type=content_type, timeout=_TIMEOUT, retry=self._retry)
        except Exception as exc:
            raise self._error(exc, "upload", key) from None

    def get_bytes(self, key: str) -> bytes:
        try:
            data: bytes = self._bucket.blob(key).download_as_bytes(timeout=_TIMEOUT, retry=self._retry)
            return data
        except Exception as exc:
            raise self._error(exc, "download", key) from None

    def head(self, key: str) -> ObjectInfo:
        try:
            blob = self._bucket.get_blob(key, timeout=_TIMEOUT, retry=self._retry)
        except Exception as exc:
            raise self._error(exc, "inspect", key) from None
        if blob is None:
            raise storage_failure(GCS, {"NotFound"}, action="inspect", bucket=self.bucket, key=key)
        return ObjectInfo(
            key=key,
            content_type=str(blob.content_type or ""),
            size=int(blob.size or 0),
            etag=str(blob.etag or "").strip('"'),
            metadata=decode_metadata(blob.metadata or {}),
        )

    def delete(self, key: str) -> None:
        """Remove one object; one that is not there is not an error (as in S3)."""
        try:
            self._bucket.blob(key).delete(timeout=_TIMEOUT, retry=self._retry)
        except Exception as exc:
            if str(getattr(exc, "code", "")) != "404":
                raise self._error(exc, "delete", key) from None

    def exists(self, key: str) -> bool:
        try:
            return bool(self._bucket.blob(key).exists(timeout=_TIMEOUT, retry=self._retry))
        except Exception as exc:
            raise self._error(exc, "inspect", key) from None

    def list_keys(self, prefix: str) -> list[str]:
        try:
            return sorted(blob.name for blob in self.client.list_blobs(
                self.bucket, prefix=prefix, fields="items(name),nextPageToken", timeout=_TIMEOUT, retry=self._retry))
        except Exception as exc:
            raise gcs_error(exc, "list", bucket=self.bucket, key=prefix, endpoint=self.endpoint_url,
                            bucket_level=True) from None

    # -- links -------------------------------------------------------------------------
    def presigned_url(self, key: str, expires_s: int = 3600) -> str:
        """A V4 signed GET URL (at most seven days, Cloud Storage's limit)."""
        kwargs: dict[str, Any] = {
            "version": "v4", "method": "GET",
            "expiration": datetime.timedelta(seconds=max(1, min(int(expires_s), _MAX_SIGNED_S))),
        }
        if self._emulated:
            kwargs["api_access_endpoint"] = self.endpoint_url
        blob = self._bucket.blob(key)
        try:
            if self._signer is not None:
                return str(blob.generate_signed_url(credentials=self._signer, **kwargs))
            credentials = getattr(self.client, "_credentials", None)
            email = getattr(credentials, "service_account_email", None)
            if isinstance(email, str) and "@" in email:  # the metadata server: sign through IAM signBlob
                import google.auth.transport.requests

                credentials.refresh(google.auth.transport.requests.Request())  # type: ignore[union-attr]  # has an e-mail: a google-auth Credentials
                return str(blob.generate_signed_url(service_account_email=email,
                                                    access_token=credentials.token, **kwargs))  # type: ignore[union-attr]  # as above
        except Exception as exc:
            raise self._error(exc, "sign a URL for", key) from None
        if self._emulated:
            return f"{self.endpoint_url}/{self.bucket}/{urllib.parse.quote(key)}"
        raise StorageError(
            f"cannot sign a URL for gs://{self.bucket}/{key}: these credentials hold no service-account key; "
            "set --public-base-url, or use a service account (key file or the metadata server)"
        )
