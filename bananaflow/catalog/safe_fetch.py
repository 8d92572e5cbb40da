"""Fetching a photo a catalog row names, without letting the row reach inside the shop.

A catalog is untrusted input: a link in it must not make the pipeline read the cloud metadata
service, an admin port on localhost, a file outside the catalog's folder or another bucket,
and send the bytes to the model. So, before any connection:

- only ``http``/``https`` links; the host is resolved here (numeric tricks such as
  ``2130706433``, ``0xa9fea9fe``, ``169.254.43518`` or ``0251.0376.0251.0376`` are read the way
  the C resolver reads them, then checked) and every address it resolves to must be public:
  loopback, private, link-local, CGNAT (100.64/10), ULA, IPv4-mapped/compatible, 6to4/NAT64
  wrappers of such addresses, multicast, unspecified and reserved ranges are refused;
- the connection goes to the address that was checked (the Host header and the TLS server
  name stay the link's host), so a second DNS answer cannot swap it; every redirect is checked
  the same way;
- one total deadline and one byte cap per download, over all redirects (S3 too);
- a local path must be a regular file under the catalog's folder or a configured root after
  symlinks are resolved; an ``s3://`` or ``gs://`` link must name the run's bucket, the
  catalog's bucket or one in an allow-list, on the same store.

Every refusal and every failure reads the same (``REFUSED``): a different text for "HTTP 404",
"connection refused" and "refused" would let a catalog map internal ports.

Settings (environment): ``BANANAFLOW_REFERENCE_ALLOW_PRIVATE=1`` lets photos come from
loopback/private/CGNAT/ULA hosts, for shops that serve them from their LAN (link-local,
metadata names, multicast and unspecified stay refused); ``BANANAFLOW_REFERENCE_ROOTS`` adds
local folders (``os.pathsep``-separated) and ``BANANAFLOW_REFERENCE_BUCKETS`` buckets
(comma-separated; ``gs://name`` for Cloud Storage) photos may come from.
"""
from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

#: A photo larger than this is not downloaded at all (HTTP, S3 and local files alike).
MAX_DOWNLOAD_BYTES = 40 * 1024 * 1024
#: One download, redirects included, ends within this many seconds.
DOWNLOAD_DEADLINE_S = 60.0
MAX_REDIRECTS = 5
ALLOW_PRIVATE_ENV = "BANANAFLOW_REFERENCE_ALLOW_PRIVATE"
ROOTS_ENV = "BANANAFLOW_REFERENCE_ROOTS"
BUCKETS_ENV = "BANANAFLOW_REFERENCE_BUCKETS"

_NEVER_NAMES = frozenset({"metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal"})
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_NUMERIC_LOOKING = re.compile(r"^(0x[0-9a-f]*|[0-9][0-9a-fx.]*)$", re.IGNORECASE)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_COMPAT = ipaddress.ip_network("::/96")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedFetch(Exception):  # noqa: N818 - internal signal, turned into ReferencePhotoError
    """The link is refused or could not be fetched; the reason stays internal on purpose."""


def refusal_text(where: str) -> str:
    """The one message for every refused or failed photo link."""
    return (
        f"reference photo {where} cannot be used (refused or unavailable): photos must be public "
        "http(s) images, files under the catalog's folder, or objects in the run's bucket"
    )


@dataclass(frozen=True)
class FetchPolicy:
    """What a photo link may reach. ``from_env`` reads the settings in the module docstring."""

    allow_private: bool = False
    roots: tuple[str, ...] = ()
    buckets: tuple[str, ...] = ()
    max_bytes: int = MAX_DOWNLOAD_BYTES
    deadline_s: float = DOWNLOAD_DEADLINE_S
    resolver: Callable[[str, int], list[str]] | None = field(default=None, compare=False)

    @classmethod
    def from_env(cls, **overrides: Any) -> FetchPolicy:
        env = os.environ
        allow = env.get(ALLOW_PRIVATE_ENV, "").strip().lower() in ("1", "true", "yes", "on")
        roots = tuple(p for p in env.get(ROOTS_ENV, "").split(os.pathsep) if p.strip())
        buckets = tuple(b.strip() for b in env.get(BUCKETS_ENV, "").split(",") if b.strip())
        values: dict[str, Any] = {"allow_private": allow, "roots": roots, "buckets": buckets}
        values.update(overrides)
        return cls(**values)


# ---------------------------------------------------------------- addresses


def parse_numeric_host(host: str) -> Address | None:
    """The address a numeric host means to the C resolver (``inet_aton`` forms included:
    ``2130706433``, ``0x7f.1``, ``0251.0376.0251.0376``), or ``None`` for a name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _NUMERIC_LOOKING.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            raise RefusedFetch("numeric host that is no address") from None
    return None


def address_allowed(address: Address, *, allow_private: bool = False) -> bool:
    """Whether a photo may be fetched from ``address`` (see the module docstring)."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            return address_allowed(inner, allow_private=allow_private)
        if address in _COMPAT:  # ::a.b.c.d (deprecated IPv4-compatible), :: and ::1 included
            return allow_private and address.is_loopback
    if address.is_link_local or address.is_multicast or address.is_unspecified or address.is_reserved:
        return False
    if address.is_global and address not in _CGNAT:
        return True
    local = address.is_loopback or address.is_private or address in _CGNAT
    return allow_private and local


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one wraps (mapped, 6to4, Teredo server, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or address in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def checked_address(host: str, port: int, policy: FetchPolicy) -> str:
    """The one address to connect to for ``host``, after every resolved address was checked
    (a name that resolves to a public and a private address is refused as a whole)."""
    name = host.strip("[]").rstrip(".").lower()
    if not name:
        raise RefusedFetch("no host")
    numeric = parse_numeric_host(name)
    if numeric is not None:
        addresses = [numeric]
    else:
        if name in _NEVER_NAMES or name.endswith(".internal") and name.startswith("metadata"):
            raise RefusedFetch("metadata name")
        if (name in _LOCAL_NAMES or name.endswith(".localhost")) and not policy.allow_private:
            raise RefusedFetch("local name")
        try:
            found = (policy.resolver or _system_resolver)(name, port)
        except OSError:
            raise RefusedFetch("name does not resolve") from None
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
    if not addresses or not all(address_allowed(a, allow_private=policy.allow_private) for a in addresses):
        raise RefusedFetch("address refused")
    chosen = addresses[0]
    inner = _embedded_ipv4(chosen) if isinstance(chosen, ipaddress.IPv6Address) else None
    return str(inner or chosen)


# ---------------------------------------------------------------- http(s)


class PinnedTransport(httpx.AsyncBaseTransport):
    """Sends each request to the address checked for its host: the URL's host is swapped for
    the address, the Host header (set from the link) and the TLS server name stay the host's.
    ``connected`` records every address a connection was opened to (tests read it)."""

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy
        self.inner = httpx.AsyncHTTPTransport(retries=0, trust_env=False)
        self.connected: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise RefusedFetch("scheme")
        port = url.port or (443 if url.scheme == "https" else 80)
        ip = await asyncio.to_thread(checked_address, url.host, port, self.policy)
        request.url = url.copy_with(host=ip)
        if url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": url.host}
        self.connected.append(ip)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def fetch_http(link: str, policy: FetchPolicy, *, transport: PinnedTransport | None = None) -> bytes:
    """The body of ``link`` (status 200 only), redirects followed by hand and each checked,
    within the policy's deadline and byte cap. Raises ``RefusedFetch`` for anything else."""
    transport = transport or PinnedTransport(policy)
    try:
        async with asyncio.timeout(policy.deadline_s):
            async with httpx.AsyncClient(
                transport=transport, follow_redirects=False, trust_env=False, timeout=policy.deadline_s
            ) as client:
                url = httpx.URL(link)
                for _ in range(MAX_REDIRECTS + 1):
                    if url.scheme not in ("http", "https"):
                        raise RefusedFetch("scheme")
                    async with client.stream("GET", url) as response:
                        if response.is_redirect and "location" in response.headers:
                            url = url.join(response.headers["location"])
                            continue
                        if response.status_code != 200:
                            raise RefusedFetch("status")
                        declared = response.headers.get("content-length", "")
                        if declared.isdigit() and int(declared) > policy.max_bytes:
                            raise RefusedFetch("too large")
                        return await _read_capped(response.aiter_raw(), policy.max_bytes)
                raise RefusedFetch("too many redirects")
    except (httpx.HTTPError, httpx.InvalidURL, TimeoutError, OSError, ValueError):
        raise RefusedFetch("failed") from None


async def _read_capped(chunks: Any, limit: int) -> bytes:
    got: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise RefusedFetch("too large")
        got.append(chunk)
    return b"".join(got)


# ---------------------------------------------------------------- files and buckets


def _under(path: str, roots: Iterable[str]) -> bool:
    for root in roots:
        real_root = os.path.realpath(root)
        if path == real_root or path.startswith(real_root.rstrip(os.sep) + os.sep):
            return True
    return False


def read_local(path: str, roots: Iterable[str], policy: FetchPolicy) -> bytes:
    """A regular file under one of ``roots`` (symlinks resolved first), at most the cap."""
    real = os.path.realpath(path)
    if not _under(real, [*roots, *policy.roots]):
        raise RefusedFetch("outside the roots")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        raise RefusedFetch("cannot open") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > policy.max_bytes:
            raise RefusedFetch("not a regular file or too large")
        data = handle.read(policy.max_bytes + 1)
    if len(data) > policy.max_bytes:
        raise RefusedFetch("too large")
    return data


def _qualified(bucket: str) -> str:
    """``s3://name`` for a plain name (S3, as the allow-list always meant), else as given."""
    bucket = bucket.strip().rstrip("/")
    return bucket if "://" in bucket else f"s3://{bucket}"


def bucket_allowed(uri: str, buckets: Iterable[str], policy: FetchPolicy) -> bool:
    """``uri`` (``s3://`` or ``gs://``) names an allowed bucket of the same store: the run's,
    the catalog's, or one in ``BANANAFLOW_REFERENCE_BUCKETS`` (``name`` for S3, ``gs://name``
    for Cloud Storage). A bucket of one store never opens the same name on the other."""
    scheme, _, rest = uri.partition("://")
    bucket = rest.partition("/")[0]
    allowed = {_qualified(b) for b in (*buckets, *policy.buckets) if b}
    return bool(bucket) and f"{scheme}://{bucket}" in allowed


def s3_bucket_allowed(uri: str, buckets: Iterable[str], policy: FetchPolicy) -> bool:
    return uri.startswith("s3://") and bucket_allowed(uri, buckets, policy)


def read_gs_capped(client: Any, uri: str, policy: FetchPolicy) -> bytes:
    """A Cloud Storage object's bytes, refused over the cap (by its size, and at most cap + 1
    bytes read)."""
    bucket, _, key = uri.removeprefix("gs://").partition("/")
    if not bucket or not key:
        raise RefusedFetch("not bucket/key")
    blob = client.bucket(bucket).get_blob(key, timeout=policy.deadline_s)
    if blob is None or int(blob.size or 0) > policy.max_bytes:
        raise RefusedFetch("missing or too large")
    data: bytes = blob.download_as_bytes(end=policy.max_bytes, timeout=policy.deadline_s)
    if len(data) > policy.max_bytes:
        raise RefusedFetch("too large")
    return data


def read_s3_capped(client: Any, uri: str, policy: FetchPolicy) -> bytes:
    """An object's bytes, refused over the cap (by its declared length and while reading),
    read in chunks until the policy's deadline."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise RefusedFetch("not bucket/key")
    started = time.monotonic()
    response = client.get_object(Bucket=bucket, Key=key)
    body = response["Body"]
    try:
        if int(response.get("ContentLength") or 0) > policy.max_bytes:
            raise RefusedFetch("too large")
        got, size = [], 0
        while chunk := body.read(1024 * 1024):
            size += len(chunk)
            if size > policy.max_bytes:
                raise RefusedFetch("too large")
            if time.monotonic() - started > policy.deadline_s:
                raise RefusedFetch("deadline")
            got.append(chunk)
        return b"".join(got)
    finally:
        body.close()


def local_root_of(base: Path | str | None) -> str:
    """The folder local photos of a catalog may come from (``""`` for an s3:// or gs:// catalog)."""
    if base is None or (isinstance(base, str) and base.startswith(("s3://", "gs://"))):
        return ""
    return str(Path(base).expanduser().resolve())
