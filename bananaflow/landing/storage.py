"""The S3 image store: where generated images, sidecars and manifests land.

Any S3-compatible server works through boto3's standard environment (AWS_ENDPOINT_URL_S3,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION), so MinIO, R2, SeaweedFS or AWS need
no bananaflow-specific settings. Every boto error becomes a ``StorageError`` with a short,
credential-free message: a failed upload must say what to fix, not dump a botocore trace.

Keys given to the methods are full object keys. Build them with ``store.key(...)`` or
``store.image_key(...)``, which apply the store's prefix exactly once. ``read_s3_uri`` reads
one ``s3://bucket/key`` outside any store (a catalog, a reference photo).
"""
from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import boto3.exceptions
import boto3.s3.transfer
import botocore.config
import botocore.exceptions

from bananaflow.errors import ConfigurationError, StorageError
from bananaflow.landing.keys import join_key, key_stem, normalize_prefix, object_key
from bananaflow.landing.store_errors import S3, exception_names, storage_failure
from bananaflow.secrets import mask_url

_MAX_METADATA_BYTES = 2048  # S3's limit for all user metadata of one object
_META_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_ENCODED = "utf-8''"  # RFC 8187 marker for values that were percent-encoded
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
#: What a boto3 S3 call raises; ``storage_error`` translates either.
S3_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
#: Two parts in flight at most: a file upload buffers at most 16 MB, whatever the file's size.
_FILE_TRANSFER = boto3.s3.transfer.TransferConfig(max_concurrency=2)


def make_s3_client(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    max_attempts: int | None = None,
    connect_timeout: float = 10.0,
    read_timeout: float = 120.0,
    session: boto3.session.Session | None = None,
) -> Any:
    """A thread-safe S3 client that honours the standard AWS environment.

    ``max_attempts`` defaults to ``AWS_MAX_ATTEMPTS`` (else 5). SigV4 is forced because boto3
    presigns with SigV2 in us-east-1, which real servers reject; 64 pooled connections because many workers upload at once.
    """
    if max_attempts is None:  # the standard AWS variable, as every SDK reads it
        try:
            max_attempts = int(os.environ.get("AWS_MAX_ATTEMPTS") or 5)
        except ValueError:
            raise ConfigurationError("AWS_MAX_ATTEMPTS must be a whole number") from None
    config = botocore.config.Config(
        signature_version="s3v4",
        retries={"max_attempts": max_attempts, "mode": "standard"},
        max_pool_connections=64,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    session = session or boto3.session.Session()  # a fresh session: the default one is not thread-safe
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def _first_image(stem: str, keys: list[str]) -> str | None:
    """The image of ``stem`` among ``keys``: the first ``stem.<ext>`` in order (not a key
    further down, ``stem./x``, nor a longer stem, ``stem0.png``)."""
    want = stem + "."
    images = sorted(key for key in keys if key.startswith(want) and "/" not in key[len(want):])
    return images[0] if images else None


def endpoint_of(client: Any) -> str:
    return str(getattr(client.meta, "endpoint_url", "") or "")


def storage_error(
    exc: Exception, action: str, *, bucket: str, key: str | None = None, endpoint: str = ""
) -> StorageError:
    """The one translation of a boto3/botocore exception: a short, credential-free
    ``StorageError`` that says what to fix (the rows are ``store_errors.FAILURES``, shared
    with Cloud Storage)."""
    code = detail = ""
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?"))
        detail = str(err.get("Message") or "")
    elif isinstance(exc, botocore.exceptions.BotoCoreError):
        detail = f"{type(exc).__name__}: {exc}"
    else:
        detail = type(exc).__name__
    return storage_failure(S3, exception_names(exc, code), action=action, bucket=bucket, key=key,
                           endpoint=endpoint, code=code, detail=detail)


def read_s3_uri(uri: str, *, client: Any = None) -> bytes:
    """The bytes of the object at ``s3://bucket/key`` (``client`` defaults to one from the
    standard AWS environment); failures are ``storage_error``'s, so every reader says the same."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise StorageError(f"{uri!r} is not s3://bucket/key")
    client = client if client is not None else make_s3_client()
    try:
        data: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return data
    except S3_ERRORS as exc:
        raise storage_error(exc, "download", bucket=bucket, key=key, endpoint=endpoint_of(client)) from None


def encode_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """Metadata S3 can carry in HTTP headers: lower-case keys (S3 lower-cases them anyway),
    printable-ASCII values.

    Other values (accents, CJK titles, newlines) are percent-encoded behind ``utf-8''`` so
    they survive and ``decode_metadata`` restores them; a newline never reaches a header.
    """
    out: dict[str, str] = {}
    for raw_key, raw_value in metadata.items():
        key = str(raw_key).strip().lower()
        if not _META_KEY.match(key):
            raise ValueError(f"metadata key {raw_key!r} must be letters, digits, '-' or '_'")
        value = str(raw_value)
        printable = all(32 <= ord(c) < 127 for c in value)
        if not printable or value.startswith(_ENCODED):
            value = _ENCODED + urllib.parse.quote(value, safe="")
        out[key] = value
    size = sum(len(k) + len(v) for k, v in out.items())
    if size > _MAX_METADATA_BYTES:
        raise ValueError(
            f"object metadata is {size} bytes; S3 allows {_MAX_METADATA_BYTES}. "
            "Put long values such as prompts in a sidecar object instead"
        )
    return out


def decode_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """Inverse of ``encode_metadata``."""
    return {
        k: urllib.parse.unquote(v[len(_ENCODED):]) if v.startswith(_ENCODED) else v
        for k, v in metadata.items()
    }


@dataclass(frozen=True)
class ObjectInfo:
    """What ``head`` learns about an object without downloading it."""

    key: str
    content_type: str
    size: int
    etag: str
    metadata: dict[str, str] = field(default_factory=dict)


class ImageStore:
    """One bucket (and optional key prefix) that images and manifests are written to: S3
    here; ``bananaflow.landing.gcs.GcsStore`` is the same store on Cloud Storage."""

    #: The URI scheme of this store's objects (``uri``); ``gs`` for Cloud Storage.
    scheme = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any = None,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> None:
        if not _BUCKET.match(bucket or ""):
            raise ConfigurationError(
                f"bucket name {bucket!r} is not valid: use 3-63 lower-case letters, digits, '.' or '-'"
            )
        self.bucket = bucket
        self.prefix = normalize_prefix(prefix)
        self.region = region
        self.client = client if client is not None else make_s3_client(endpoint_url=endpoint_url, region=region)

    def __repr__(self) -> str:
        return f"ImageStore(bucket={self.bucket!r}, prefix={self.prefix!r}, endpoint={mask_url(self.endpoint_url)!r})"

    @property
    def endpoint_url(self) -> str:
        return endpoint_of(self.client)

    # -- keys --------------------------------------------------------------------------
    def key(self, *parts: str) -> str:
        """A full object key under this store's prefix."""
        return join_key(self.prefix, *parts)

    def image_stem(self, sku: str, variant: str, digest: str) -> str:
        """``key_stem`` under this store's prefix."""
        return key_stem(self.prefix, sku, variant, digest)

    def image_key(self, sku: str, variant: str, digest: str, ext: str) -> str:
        """``object_key`` under this store's prefix."""
        return object_key(self.prefix, sku, variant, digest, ext)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    @property
    def spool_name(self) -> str:
        """The folder of the local spool for this bucket (``spool_for_bucket``)."""
        return self.bucket

    # -- errors ------------------------------------------------------------------------
    def _error(self, exc: Exception, action: str, key: str | None = None) -> StorageError:
        return storage_error(exc, action, bucket=self.bucket, key=key, endpoint=self.endpoint_url)

    @staticmethod
    def _code(exc: botocore.exceptions.ClientError) -> str:
        return str(exc.response.get("Error", {}).get("Code", ""))

    # -- bucket ------------------------------------------------------------------------
    def ensure_bucket(self) -> None:
        """Create the bucket if it is absent, so a first run on a fresh server just works."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except botocore.exceptions.ClientError as exc:
            if self._code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise self._error(exc, "open") from None
        except (botocore.exceptions.BotoCoreError, ValueError) as exc:
            raise self._error(exc, "open") from None
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        region = self.region or self.client.meta.region_name
        if region and region != "us-east-1" and "amazonaws.com" in self.endpoint_url:
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self.client.create_bucket(**kwargs)
        except botocore.exceptions.ClientError as exc:
            if self._code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise self._error(exc, "create") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise self._error(exc, "create") from None

    # -- objects -----------------------------------------------------------------------
    def find_existing(self, stem: str) -> str | None:
        """The key of an object ``stem.<ext>`` if one exists: the image was already made,
        whatever format the model returned that time."""
        return _first_image(stem, self._list_page(stem + ".", 50)[0])

    def find_with_sidecars(self, stem: str) -> tuple[str | None, list[str]]:
        """``find_existing(stem)``, and the keys beside it that start with ``stem~`` (the
        blocked marker, claims), from one LIST: the first look at every item of a run costs
        one request instead of two, and shows claims an interrupted run left behind."""
        keys, truncated = self._list_page(stem, 1000)
        if truncated:  # a stem with over 1,000 neighbours: ask both precisely
            return self.find_existing(stem), self.list_keys(stem + "~")
        return _first_image(stem, keys), [key for key in sorted(keys) if key.startswith(stem + "~")]

    def _list_page(self, prefix: str, max_keys: int) -> tuple[list[str], bool]:
        """One LIST under ``prefix``: its keys, and whether S3 had more."""
        try:
            resp = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=max_keys)
        except S3_ERRORS as exc:
            raise self._error(exc, "list", prefix) from None
        return [obj["Key"] for obj in resp.get("Contents", [])], bool(resp.get("IsTruncated"))

    def put_image(
        self,
        key: str,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        *,
        if_absent: bool = False,
    ) -> bool:
        """Upload an image with its ContentType and metadata.

        With ``if_absent`` the write is conditional (If-None-Match: *), so two workers that
        race on the same key cannot both land; returns False when the object was already there.
        """
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": data,
            "ContentType": content_type,
            "Metadata": encode_metadata(metadata or {}),
        }
        if if_absent:
            kwargs["IfNoneMatch"] = "*"
        try:
            self.client.put_object(**kwargs)
        except botocore.exceptions.ClientError as exc:
            if if_absent and self._code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise self._error(exc, "upload", key) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise self._error(exc, "upload", key) from None
        return True

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        """Upload a non-image object (sidecar JSON, manifest, rejection report)."""
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        except S3_ERRORS as exc:
            raise self._error(exc, "upload", key) from None

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Upload a local file (a manifest: 40 MB at 100,000 rows) from disk, in parts above
        8 MB, so the run never holds it whole in memory."""
        try:
            self.client.upload_file(str(path), self.bucket, key, ExtraArgs={"ContentType": content_type},
                                    Config=_FILE_TRANSFER)
        except S3_ERRORS as exc:
            raise self._error(exc, "upload", key) from None
        except boto3.exceptions.S3UploadFailedError as exc:  # raised by boto3 while handling a ClientError
            cause = exc.__cause__ or exc.__context__
            raise self._error(cause if isinstance(cause, Exception) else exc, "upload", key) from None

    def get_bytes(self, key: str) -> bytes:
        return read_s3_uri(self.uri(key), client=self.client)

    def head(self, key: str) -> ObjectInfo:
        """Type, size and decoded user metadata of one object: enough to report an image a
        previous run made without downloading it."""
        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=key)
        except S3_ERRORS as exc:
            raise self._error(exc, "inspect", key) from None
        return ObjectInfo(
            key=key,
            content_type=str(resp.get("ContentType", "")),
            size=int(resp.get("ContentLength", 0)),
            etag=str(resp.get("ETag", "")).strip('"'),
            metadata=decode_metadata(resp.get("Metadata", {})),
        )

    def copy(self, source_key: str, key: str) -> None:
        """Copy an object inside the bucket, type and metadata included (a reviewer's approval
        publishes an image from the review prefix without downloading it)."""
        try:
            self.client.copy_object(Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": source_key},
                                    MetadataDirective="COPY")
        except S3_ERRORS as exc:
            raise self._error(exc, "copy", source_key) from None

    def delete(self, key: str) -> None:
        """Remove one object; removing one that is not there is not an error (as in S3)."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except S3_ERRORS as exc:
            raise self._error(exc, "delete", key) from None

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except botocore.exceptions.ClientError as exc:
            if self._code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._error(exc, "inspect", key) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise self._error(exc, "inspect", key) from None

    def presigned_url(self, key: str, expires_s: int = 3600) -> str:
        """A SigV4 GET URL anyone can open until it expires (for review pages and feeds)."""
        try:
            url: str = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=int(expires_s)
            )
        except S3_ERRORS as exc:
            raise self._error(exc, "presign", key) from None
        return url

    # -- small state objects (batch ledger) -------------------------------------------
    def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (a full key prefix), sorted."""
        keys: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                keys += [obj["Key"] for obj in page.get("Contents", [])]
        except S3_ERRORS as exc:
            raise self._error(exc, "list", prefix) from None
        return sorted(keys)
