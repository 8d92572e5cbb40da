"""Where a catalog may be read from when the location is input, not configuration.

A ``catalog.updated`` event's payload, or the parameters of a deployment run started by
someone else, name the catalog; without a bound, an event naming ``~/.pgpass``,
``/etc/passwd`` or a ``.env`` made the worker open it, and any bucket the worker can read was
accepted. So such runs read only from:

- the deployment's own catalog location (the folder of its default ``catalog`` parameter,
  or that bucket), and
- the folders in ``BANANAFLOW_CATALOG_ROOTS`` (``os.pathsep``-separated) and the buckets in
  ``BANANAFLOW_CATALOG_BUCKETS`` (comma-separated), both empty by default.

Paths are judged after ``~``, ``..`` and symlinks are resolved, ``s3://`` links after their
dot segments (``s3://shop/../finance/x`` is bucket ``finance``). A run started by hand
(``bananaflow run``, the flow called in Python) is the operator's own and is not bounded here.
"""
from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bananaflow.errors import ConfigurationError

__all__ = ["BUCKETS_ENV", "ROOTS_ENV", "LocationPolicy", "allowing", "check_location", "normalised_s3"]

ROOTS_ENV = "BANANAFLOW_CATALOG_ROOTS"
BUCKETS_ENV = "BANANAFLOW_CATALOG_BUCKETS"


def normalised_s3(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` with dot segments resolved, as an HTTP path would reach them."""
    rest = uri.removeprefix("s3://").replace("\\", "/")
    bucket, _, key = posixpath.normpath("/" + rest).lstrip("/").partition("/")
    return bucket, key


def _real(path: str) -> str:
    return os.path.realpath(Path(path).expanduser())


@dataclass(frozen=True)
class LocationPolicy:
    """Folders and buckets a run whose catalog location is input may read."""

    roots: tuple[str, ...] = ()
    buckets: tuple[str, ...] = ()

    @classmethod
    def for_deployment(cls, own_catalog: str | None, environ: Mapping[str, str] | None = None) -> LocationPolicy:
        """The settings, plus the folder or bucket of the deployment's own catalog."""
        env = os.environ if environ is None else environ
        roots = [r for r in env.get(ROOTS_ENV, "").split(os.pathsep) if r.strip()]
        buckets = [b.strip() for b in env.get(BUCKETS_ENV, "").split(",") if b.strip()]
        own = (own_catalog or "").strip()
        if own.startswith("s3://"):
            buckets.append(normalised_s3(own)[0])
        elif own and "{{" not in own:  # an unfilled template is no location
            roots.append(str(Path(_real(own)).parent))
        return cls(tuple(roots), tuple(buckets))

    def allows(self, location: str) -> bool:
        if location.startswith("s3://"):
            bucket, key = normalised_s3(location)
            return bool(bucket and key) and bucket in self.buckets
        if "://" in location:
            return False
        real = _real(location)
        for root in self.roots:
            real_root = _real(root)
            if real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep):
                return True
        return False


def check_location(location: str, policy: LocationPolicy, *, what: str = "catalog") -> None:
    """Refuse, in one line naming the location and never reading it, what the policy does
    not allow."""
    if policy.allows(location):
        return
    shown = "".join(c if c.isprintable() else "?" for c in location)[:300]
    raise ConfigurationError(
        f"{what} {shown} is outside the locations this deployment may read (its own catalog's folder or bucket, "
        f"{ROOTS_ENV}, {BUCKETS_ENV}); refused. Add its folder or bucket to those settings on the worker"
    )


def allowing(environ: Mapping[str, str], catalog: str) -> dict[str, str]:
    """``environ`` with ``catalog``'s folder (or bucket) added to the settings: what a local
    stack gives its workers so every deployment may read the catalog it was deployed with."""
    env = dict(environ)
    if catalog.startswith("s3://"):
        bucket = normalised_s3(catalog)[0]
        env[BUCKETS_ENV] = ",".join(b for b in (env.get(BUCKETS_ENV, ""), bucket) if b)
    elif catalog:
        folder = str(Path(_real(catalog)).parent)
        env[ROOTS_ENV] = os.pathsep.join(r for r in (env.get(ROOTS_ENV, ""), folder) if r)
    return env
