"""Reference-photo links as an attacker writes them: refused before any connection, one
message for every refusal, redirects re-checked, connections pinned, downloads bounded.

Only 127.0.0.1 servers started here are ever contacted: every refused case asserts that no
DNS lookup and no connection happened at all (sockets are spied on)."""
from __future__ import annotations

import asyncio
import base64
import http.server
import io
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

from bananaflow.catalog import references, safe_fetch
from bananaflow.catalog.references import ReferenceFetcher, ReferencePhotoError, shrink
from bananaflow.catalog.safe_fetch import FetchPolicy, PinnedTransport
from bananaflow.planning.work import WorkItem


def png(size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


PHOTO = png()


@dataclass
class Served:
    """What the local server saw."""

    hits: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)


class _Handler(http.server.BaseHTTPRequestHandler):
    served: Served
    port: int

    def log_message(self, *args: object) -> None:
        """Quiet."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.served.hits.append(self.path)
        self.served.hosts.append(self.headers.get("Host", ""))
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", self.path.split("=", 1)[1])
            self.end_headers()
        elif self.path.startswith("/photo.png"):
            self._send(PHOTO)
        elif self.path.startswith("/slow.png"):
            time.sleep(0.6)
            self._send(PHOTO)
        elif self.path == "/big":
            self._send(b"x" * (2 * 1024 * 1024))
        elif self.path == "/big-chunked":
            self.send_response(200)
            self.end_headers()  # no Content-Length: read until close
            for _ in range(64):
                self.wfile.write(b"y" * 65536)
        elif self.path == "/drip":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):  # 1 byte every 0.3 s: each read is quick, the whole is not
                self.wfile.write(b"z")
                self.wfile.flush()
                time.sleep(0.3)
        else:
            self.send_response(404)
            self.end_headers()

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def server() -> Iterator[tuple[str, Served]]:
    served = Served()
    handler = type("H", (_Handler,), {"served": served})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}", served
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every DNS lookup and connection attempt is recorded and fails."""
    attempts: list[str] = []

    def lookup(host: object, *args: object, **kwargs: object) -> list[object]:
        attempts.append(f"getaddrinfo {host}")
        raise OSError("no lookups in this test")

    async def connect(self: object, *args: object, **kwargs: object) -> object:
        attempts.append(f"connect {args[1:3]}")
        raise OSError("no connections in this test")

    monkeypatch.setattr(safe_fetch.socket, "getaddrinfo", lookup)
    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "create_connection", connect)
    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "sock_connect", connect)
    return attempts


def item(*links: str, root: str = "") -> WorkItem:
    return WorkItem(
        row_number=2, sku="S", variant="main", prompt="p", model="gemini-3-pro-image", aspect_ratio="1:1",
        image_size="1K", key_stem="p/S/main-abc", prompt_sha256="0" * 64, reference_links=links, reference_root=root,
    )


def refused(link: str, fetcher: ReferenceFetcher, *, root: str = "", store: object = None) -> str:
    with pytest.raises(ReferencePhotoError) as caught:
        asyncio.run(fetcher.for_item(item(link, root=root), store=store))
    return caught.value.message


HOSTILE = [
    "http://2130706433:{port}/photo.png",  # 127.0.0.1 as one decimal number
    "http://0x7f000001:{port}/photo.png",
    "http://127.1:{port}/photo.png",
    "http://127.0.0.1:{port}/photo.png",
    "http://localhost:{port}/photo.png",
    "http://[::1]:{port}/photo.png",
    "http://[::ffff:127.0.0.1]:{port}/photo.png",
    "http://0.0.0.0:{port}/photo.png",
    "http://2852039166/latest/meta-data/",  # 169.254.169.254
    "http://0xa9fea9fe/latest/meta-data/",
    "http://169.254.43518/latest/meta-data/",
    "http://0251.0376.0251.0376/latest/meta-data/",
    "http://169.254.169.254./latest/meta-data/",
    "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",
    "http://metadata.google.internal./computeMetadata/v1/",
    "http://10.0.0.1/a.jpg",
    "http://192.168.1.1/a.jpg",
    "http://172.16.0.1/a.jpg",
    "http://100.64.0.1/a.jpg",
    "http://[fe80::1]/a.jpg",
    "http://224.0.0.1/a.jpg",
    "http://999999999999/a.jpg",
    "ftp://example.com/a.jpg",
    "file:///etc/passwd",
    "gopher://127.0.0.1:{port}/_x",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_internal_links_are_refused_before_any_lookup_or_connection(
    template: str, server: tuple[str, Served], no_network: list[str]
) -> None:
    address, served = server
    link = template.format(port=address.rsplit(":", 1)[1])
    message = refused(link, ReferenceFetcher())
    assert message == safe_fetch.refusal_text(link)
    assert no_network == [] and served.hits == []


@pytest.mark.parametrize("link", [
    "http://169.254.169.254/latest/meta-data/", "http://0xa9fea9fe/", "http://[::ffff:169.254.169.254]/",
    "http://metadata.google.internal/x", "http://[fe80::1]/", "http://0.0.0.0/", "http://224.0.0.1/",
])
def test_allowing_private_hosts_never_allows_metadata_or_link_local(link: str, no_network: list[str]) -> None:
    refused(link, ReferenceFetcher(policy=FetchPolicy(allow_private=True)))
    assert no_network == []


def test_a_name_resolving_inside_is_refused_and_checked_addresses_are_the_ones_connected(
    server: tuple[str, Served],
) -> None:
    address, served = server
    port = address.rsplit(":", 1)[1]
    inside = FetchPolicy(resolver=lambda host, port: ["8.8.8.8", "10.1.2.3"])  # one private answer is enough
    refused(f"http://photos.shop.test:{port}/photo.png", ReferenceFetcher(policy=inside))
    assert served.hits == []

    answers = iter([["127.0.0.1"], ["169.254.169.254"]])  # a rebinding DNS: second answer inside
    lan = FetchPolicy(allow_private=True, resolver=lambda host, port: next(answers))
    pins: list[PinnedTransport] = []

    def factory(policy: FetchPolicy) -> PinnedTransport:
        pins.append(PinnedTransport(policy))
        return pins[-1]

    photos = asyncio.run(ReferenceFetcher(policy=lan, transport_factory=factory).for_item(
        item(f"http://cdn.shop.test:{port}/photo.png"), store=None))
    assert len(photos) == 1
    assert pins[0].connected == ["127.0.0.1"]  # one lookup, the connection went to its answer
    assert served.hosts == [f"cdn.shop.test:{port}"]  # the Host header stays the link's


def test_every_redirect_is_checked_again(server: tuple[str, Served]) -> None:
    address, served = server
    lan = FetchPolicy(allow_private=True)
    pins: list[PinnedTransport] = []

    def factory(policy: FetchPolicy) -> PinnedTransport:
        pins.append(PinnedTransport(policy))
        return pins[-1]

    fetcher = ReferenceFetcher(policy=lan, transport_factory=factory)
    ok = asyncio.run(fetcher.for_item(item(f"http://{address}/redirect?to=/photo.png"), store=None))
    assert len(ok) == 1 and served.hits == ["/redirect?to=/photo.png", "/photo.png"]
    for target in ("http://169.254.169.254/latest/meta-data/", "http://0xa9fea9fe/", "file:///etc/passwd"):
        link = f"http://{address}/redirect?to={target}"
        assert refused(link, fetcher) == safe_fetch.refusal_text(link.split("?")[0])
        assert pins[-1].connected == ["127.0.0.1"]  # the redirect's target was never connected to


def test_a_missing_photo_a_closed_port_and_a_refusal_read_the_same(server: tuple[str, Served]) -> None:
    address, _ = server
    fetcher = ReferenceFetcher(policy=FetchPolicy(allow_private=True))
    texts = {
        refused(link, fetcher).replace(link, "LINK")
        for link in (f"http://{address}/nope.jpg", "http://127.0.0.1:9/x.jpg", "http://169.254.169.254/x.jpg")
    }
    assert len(texts) == 1


def test_a_download_has_one_deadline_and_one_byte_cap(server: tuple[str, Served]) -> None:
    address, _ = server
    fetcher = ReferenceFetcher(policy=FetchPolicy(allow_private=True, deadline_s=1.0, max_bytes=1024 * 1024))
    started = time.monotonic()
    refused(f"http://{address}/drip", fetcher)
    assert time.monotonic() - started < 5  # not 100 reads x 0.3 s
    refused(f"http://{address}/big", fetcher)  # Content-Length says 2 MB
    refused(f"http://{address}/big-chunked", fetcher)  # no length: stopped while reading


def test_local_photos_only_regular_files_under_the_catalog_folder(tmp_path: Path) -> None:
    folder = tmp_path / "catalog"
    (folder / "photos").mkdir(parents=True)
    (folder / "photos" / "a.png").write_bytes(PHOTO)
    (tmp_path / "secret.png").write_bytes(PHOTO)
    (folder / "photos" / "escape.png").symlink_to(tmp_path / "secret.png")
    os.mkfifo(folder / "photos" / "pipe.png")
    fetcher = ReferenceFetcher()
    root = str(folder)
    assert len(asyncio.run(fetcher.for_item(item(str(folder / "photos" / "a.png"), root=root), store=None))) == 1
    for link in (
        os.path.normpath(folder / "photos" / ".." / ".." / "secret.png"),  # what resolve_link makes of ../../
        str(tmp_path / "secret.png"), str(folder / "photos" / "escape.png"), str(folder / "photos" / "pipe.png"),
        "/dev/zero", "/etc/passwd", "/proc/self/environ",
    ):
        assert refused(link, fetcher, root=root) == safe_fetch.refusal_text(link)
    devices = ReferenceFetcher(policy=FetchPolicy(roots=("/dev",)))
    refused("/dev/zero", devices, root=root)  # even under a configured root: regular files only


@dataclass
class _FakeS3:
    objects: dict[tuple[str, str], bytes]
    asked: list[tuple[str, str]] = field(default_factory=list)
    lie_about_length: bool = False

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, object]:  # noqa: N803 - boto3's names
        self.asked.append((Bucket, Key))
        data = self.objects[(Bucket, Key)]
        length = 0 if self.lie_about_length else len(data)
        return {"Body": io.BytesIO(data), "ContentLength": length}


class _Store:
    bucket = "run-bucket"


def test_s3_photos_only_from_the_runs_bucket_or_an_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = _FakeS3({("run-bucket", "a.png"): PHOTO, ("other", "a.png"): PHOTO, ("partner", "a.png"): PHOTO})
    fetcher = ReferenceFetcher(s3_client=s3)
    assert len(asyncio.run(fetcher.for_item(item("s3://run-bucket/a.png"), store=_Store()))) == 1
    assert refused("s3://other/a.png", fetcher, store=_Store()) == safe_fetch.refusal_text("s3://other/a.png")
    assert s3.asked == [("run-bucket", "a.png")]  # the other bucket was never asked
    monkeypatch.setenv(safe_fetch.BUCKETS_ENV, "partner")
    assert len(asyncio.run(ReferenceFetcher(s3_client=s3).for_item(item("s3://partner/a.png"), store=_Store()))) == 1
    # a catalog read from a bucket may use photos next to it
    near = item("s3://shop/feeds/a.png", root="s3://shop/feeds/")
    s3.objects[("shop", "feeds/a.png")] = PHOTO
    assert len(asyncio.run(ReferenceFetcher(s3_client=s3).for_item(near, store=_Store()))) == 1


def test_s3_downloads_are_capped_even_when_the_length_lies() -> None:
    s3 = _FakeS3({("run-bucket", "big"): b"x" * (3 * 1024 * 1024)}, lie_about_length=True)
    fetcher = ReferenceFetcher(s3_client=s3, policy=FetchPolicy(max_bytes=1024 * 1024))
    refused("s3://run-bucket/big", fetcher, store=_Store())


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` (a decompression bomb's shape)."""
    data = bytearray(png((8, 8)))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def test_pixel_bombs_are_refused_before_decoding_and_decodes_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ReferencePhotoError, match="more than 50 megapixels"):
        shrink(_png_declaring(9000, 9000), 2048)
    active, peak = [0], [0]
    lock = threading.Lock()
    real = references._decode

    def counting(data: bytes, max_side: int, source: str) -> Image.Image:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        try:
            return real(data, max_side, source)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(references, "_decode", counting)
    threads = [threading.Thread(target=shrink, args=(PHOTO, 512)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == references.MAX_PARALLEL_DECODES


def test_the_refusal_does_not_carry_a_signed_query() -> None:
    link = "http://169.254.169.254/x.jpg?X-Amz-Signature=" + base64.b16encode(b"secret").decode()
    assert "Signature" not in refused(link, ReferenceFetcher())


@pytest.mark.parametrize("link", [
    "http://192.0.0.192/latest/",  # Oracle Cloud metadata, in 192.0.0.0/24 (Python calls it global)
    "http://192.0.0.170/", "http://192.0.2.1/", "http://198.18.0.1/", "http://198.51.100.7/",
    "http://203.0.113.9/", "http://192.88.99.1/", "http://255.255.255.255/", "http://240.0.0.1/",
    "http://168.63.129.16/machine", "http://[2001:db8::1]/", "http://[100::1]/", "http://[3fff::1]/",
    "http://[::ffff:192.0.0.192]/", "http://[64:ff9b::c000:c0]/",
])
def test_special_purpose_ranges_are_refused_in_strict_mode(link: str, no_network: list[str]) -> None:
    assert refused(link, ReferenceFetcher()) == safe_fetch.refusal_text(link)
    assert no_network == []


@pytest.mark.parametrize("link", [
    "http://[fd00:ec2::254]/latest/meta-data/", "http://100.100.100.200/latest/meta-data/",
    "http://192.0.0.192/opc/v2/instance/", "http://169.254.170.2/v2/credentials",
    "http://[fd20:ce::254]/computeMetadata/v1/", "http://[::ffff:100.100.100.200]/",
])
def test_metadata_addresses_stay_refused_with_private_hosts_allowed(
    link: str, no_network: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(safe_fetch.ALLOW_PRIVATE_ENV, "1")
    policy = FetchPolicy.from_env()
    assert policy.allow_private
    assert refused(link, ReferenceFetcher(policy=policy)) == safe_fetch.refusal_text(link)
    assert no_network == []


def test_the_table_still_lets_a_shops_lan_and_public_hosts_through() -> None:
    import ipaddress

    lan = ("10.1.2.3", "192.168.1.5", "100.64.0.9", "127.0.0.1", "fd12:3456::1", "::1")
    for text in lan:
        address = ipaddress.ip_address(text)
        assert not safe_fetch.address_allowed(address) and safe_fetch.address_allowed(address, allow_private=True)
    for text in ("8.8.8.8", "151.101.1.69", "2606:4700::6810:84e5"):
        assert safe_fetch.address_allowed(ipaddress.ip_address(text))


def test_only_the_photos_the_model_takes_are_downloaded(server: tuple[str, Served]) -> None:
    address, served = server
    links = tuple(f"http://{address}/photo.png?n={n}" for n in range(120))
    fetcher = ReferenceFetcher(policy=FetchPolicy(allow_private=True))
    photos = asyncio.run(fetcher.for_item(item(*links), store=None))
    limit = references.get_model("gemini-3-pro-image").max_reference_images
    assert len(photos) == limit and len(served.hits) == limit  # not 120 downloads
    assert served.hits == [f"/photo.png?n={n}" for n in range(limit)]


def test_all_photos_of_an_item_share_one_deadline(server: tuple[str, Served]) -> None:
    address, served = server
    links = tuple(f"http://{address}/slow.png?n={n}" for n in range(6))  # each well inside its own deadline
    fetcher = ReferenceFetcher(policy=FetchPolicy(allow_private=True, deadline_s=5.0, item_deadline_s=1.5))
    with pytest.raises(ReferencePhotoError, match="took longer than 1.5 s in all"):
        asyncio.run(fetcher.for_item(item(*links), store=None))
    assert len(served.hits) < len(links)


def test_dot_segments_cannot_walk_out_of_the_runs_bucket() -> None:
    s3 = _FakeS3({("run-bucket", "a.png"): PHOTO, ("finance", "q3.png"): PHOTO})
    fetcher = ReferenceFetcher(s3_client=s3)
    for link in ("s3://run-bucket/../finance/q3.png", "s3://run-bucket/photos/../../finance/q3.png",
                 "s3://run-bucket/./..//finance/q3.png"):
        assert refused(link, fetcher, store=_Store()) == safe_fetch.refusal_text(link)
    assert s3.asked == []
    assert len(asyncio.run(fetcher.for_item(item("s3://run-bucket/x/../a.png"), store=_Store()))) == 1
    assert s3.asked == [("run-bucket", "a.png")]
