"""HTTPS photo downloads pinned to the checked address against a real local TLS server: the
connection goes to the address that was checked, while SNI and certificate verification use
the link's host name (the certificate names only ``photos.shop.test``, no IP), so pinning
neither breaks TLS nor weakens it; a certificate for another name is refused."""
from __future__ import annotations

import asyncio
import datetime
import http.server
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bananaflow.catalog import safe_fetch
from bananaflow.catalog.references import ReferenceFetcher, ReferencePhotoError
from bananaflow.catalog.safe_fetch import FetchPolicy, PinnedTransport
from tests.unit.catalog.test_safe_fetch import PHOTO, item


@dataclass
class Seen:
    sni: list[str | None] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _certificate(subject: str, issuer_key: ec.EllipticCurvePrivateKey, issuer: str, key: ec.EllipticCurvePrivateKey,
                 *, ca: bool, dns: str | None = None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A test CA and two server certificates it signed: one for photos.shop.test, one for
    other.test. Nothing but DNS names: an IP check would fail them both."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("bananaflow test CA", ca_key, "bananaflow test CA", ca_key, ca=True)
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for host in ("photos.shop.test", "other.test"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(host, ca_key, "bananaflow test CA", key, ca=False, dns=host)
        (folder / f"{host}.pem").write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
            + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()))
    return {"ca": folder / "ca.pem", **{h: folder / f"{h}.pem" for h in ("photos.shop.test", "other.test")}}


def _tls_server(cert: Path, seen: Seen) -> Iterator[int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            """Quiet."""

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen.hosts.append(self.headers.get("Host", ""))
            self.send_response(200)
            self.send_header("Content-Length", str(len(PHOTO)))
            self.end_headers()
            self.wfile.write(PHOTO)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert)
    context.sni_callback = lambda sock, name, ctx: seen.sni.append(name)  # type: ignore[assignment,func-returns-value]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture()
def tls(pki: dict[str, Path]) -> Iterator[tuple[int, Seen]]:
    seen = Seen()
    yield from ((port, seen) for port in _tls_server(pki["photos.shop.test"], seen))


def _policy(pki: dict[str, Path], answers: list[str]) -> FetchPolicy:
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    return FetchPolicy(allow_private=True, resolver=lambda host, port: answers, ssl_context=context)


def test_https_goes_to_the_checked_address_with_the_links_name_for_tls(
    tls: tuple[int, Seen], pki: dict[str, Path]
) -> None:
    port, seen = tls
    pins: list[PinnedTransport] = []

    def factory(policy: FetchPolicy) -> PinnedTransport:
        pins.append(PinnedTransport(policy))
        return pins[-1]

    fetcher = ReferenceFetcher(policy=_policy(pki, ["127.0.0.1"]), transport_factory=factory)
    photos = asyncio.run(fetcher.for_item(item(f"https://photos.shop.test:{port}/p.png"), store=None))
    assert len(photos) == 1
    assert pins[0].connected == ["127.0.0.1"]  # the checked address, not a second lookup
    assert seen.sni == ["photos.shop.test"]  # TLS named the link's host
    assert seen.hosts == [f"photos.shop.test:{port}"]
    assert ipaddress.ip_address(pins[0].connected[0]).is_loopback


def test_a_certificate_for_another_name_is_refused(pki: dict[str, Path]) -> None:
    seen = Seen()
    for port in _tls_server(pki["other.test"], seen):
        link = f"https://photos.shop.test:{port}/p.png"
        with pytest.raises(ReferencePhotoError) as caught:
            asyncio.run(ReferenceFetcher(policy=_policy(pki, ["127.0.0.1"])).for_item(item(link), store=None))
        assert caught.value.message == safe_fetch.refusal_text(link)
        assert seen.sni == ["photos.shop.test"] and seen.hosts == []  # the handshake failed; no request was sent


def test_an_untrusted_issuer_is_refused(tls: tuple[int, Seen]) -> None:
    port, seen = tls
    policy = FetchPolicy(allow_private=True, resolver=lambda host, p: ["127.0.0.1"])  # the system's roots only
    with pytest.raises(ReferencePhotoError):
        asyncio.run(ReferenceFetcher(policy=policy).for_item(item(f"https://photos.shop.test:{port}/p.png"), store=None))
    assert seen.hosts == []
