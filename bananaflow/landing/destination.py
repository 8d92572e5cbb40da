"""Where a run's objects go, and reading one object by its URI, whichever store holds it.

``--bucket`` (``delivery.bucket``) names an S3 bucket (``shop-images``, or
``s3://shop-images/prefix``) or a Cloud Storage bucket (``gs://shop-images/prefix``); a
prefix in the URI is the run's prefix, so ``--bucket gs://shop/catalog`` is
``--bucket gs://shop --prefix catalog``. ``open_store`` gives the matching store:
``ImageStore`` (S3) or ``GcsStore``, the same interface, the same guarantees.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bananaflow.errors import ConfigurationError
from bananaflow.landing.keys import normalize_prefix
from bananaflow.landing.storage import ImageStore

__all__ = ["SCHEMES", "Destination", "is_object_uri", "open_store", "parse_destination", "read_object_uri"]

#: URI schemes of the stores a run can write to and read catalogs/photos from.
SCHEMES = ("s3://", "gs://")


@dataclass(frozen=True)
class Destination:
    """A parsed ``--bucket``: the store's scheme (``s3`` or ``gs``), bucket and prefix (None: not given)."""

    scheme: str
    bucket: str
    prefix: str | None

    @property
    def uri(self) -> str:
        return f"{self.scheme}://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")


def is_object_uri(text: str) -> bool:
    return text.startswith(SCHEMES)


def parse_destination(bucket: str, prefix: str | None = None) -> Destination:
    """``bucket`` as given to ``--bucket`` (a name or a URI) with ``--prefix``; a prefix in
    the URI and a different ``--prefix`` are one line of error, not a guess."""
    value = bucket.strip()
    if not is_object_uri(value):
        if "://" in value:
            raise ConfigurationError(
                f"--bucket {value!r}: use a bucket name, s3://bucket[/prefix] or gs://bucket[/prefix]"
            )
        return Destination("s3", value, prefix)
    scheme, rest = value[:2], value[5:]
    name, _, path = rest.partition("/")
    path = normalize_prefix(path)
    if path and prefix is not None and normalize_prefix(prefix) != path:
        raise ConfigurationError(
            f"--bucket {value} already names the prefix '{path}' and --prefix says '{prefix}'; give the prefix once"
        )
    return Destination(scheme, name, path or prefix)


def open_store(bucket: str, prefix: str | None = None, *, default_prefix: str = "", **gcs: Any) -> ImageStore:
    """The store ``bucket`` (a name or URI) names: S3 from the AWS environment, Cloud
    Storage from ADC (``gcs``: ``client``, ``signer``, ``project`` for ``GcsStore``)."""
    where = parse_destination(bucket, prefix)
    chosen = where.prefix if where.prefix is not None else default_prefix
    if where.scheme == "gs":
        from bananaflow.landing.gcs import GcsStore

        return GcsStore(where.bucket, chosen, **gcs)
    return ImageStore(where.bucket, chosen)


def read_object_uri(uri: str, *, client: Any = None) -> bytes:
    """The bytes of ``s3://bucket/key`` or ``gs://bucket/key``; failures are ``StorageError``s."""
    if uri.startswith("gs://"):
        from bananaflow.landing.gcs import read_gs_uri

        return read_gs_uri(uri, client=client)
    from bananaflow.landing.storage import read_s3_uri

    return read_s3_uri(uri, client=client)
