"""Credentials inside URLs (``user:password@``, ``?password=``, signatures) are masked
wherever a URL is shown: ``bananaflow.secrets.mask_url`` itself, ``redact`` (errors, logs),
the Redis backend's error and every line of ``bananaflow doctor``."""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bananaflow.cli.main import main
from bananaflow.errors import BananaflowError, ConfigurationError, StorageError
from bananaflow.secrets import MASK, mask_url, redact
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer

KEY = "FAKE-TEST-urlsecrets-0123456789abcdef"
#: Each a credential that must never be printed; none is registered as a secret.
USER_PW, QUERY_PW, TOKEN = "Url-Pass-9f3k2", "Query-Pass-7d1x8", "Tok-4b6n0q"


@pytest.mark.parametrize(
    ("url", "gone", "kept"),
    [
        (f"redis://bf:{USER_PW}@10.0.0.5:6379/0?password={QUERY_PW}&db=2", [USER_PW, "bf:"], ["10.0.0.5:6379/0", "db=2"]),
        (f"redis://:{USER_PW}@redis.internal:6379", [USER_PW], ["redis.internal:6379"]),
        (f"https://{TOKEN}@github.example/org/repo.git", [TOKEN], ["github.example/org/repo.git"]),
        (f"http://u:p@ss{USER_PW}@127.0.0.1:4200/api", [USER_PW, "p@ss"], ["127.0.0.1:4200/api"]),
        (f"https://relay.example/v1?pass={QUERY_PW}&pwd={USER_PW}&model=x", [QUERY_PW, USER_PW], ["model=x"]),
        (f"https://b.s3.example/k.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={TOKEN}"
         f"&X-Amz-Security-Token={USER_PW}&X-Amz-Signature={QUERY_PW}", [QUERY_PW, USER_PW, TOKEN],
         ["X-Amz-Algorithm=AWS4-HMAC-SHA256"]),
        (f"https://acct.blob.example/c/b?sv=2024&sig={QUERY_PW}&apiKey={TOKEN}", [QUERY_PW, TOKEN], ["sv=2024"]),
        (f"https://app.example/cb#access_token={TOKEN}&state=1", [TOKEN], ["state=1"]),
        (f"https://x.example/?client_secret={QUERY_PW}&secret={USER_PW}&token={TOKEN}", [QUERY_PW, USER_PW, TOKEN], []),
    ],
)
def test_mask_url_masks_every_credential_part_and_keeps_where_it_points(url: str, gone: list[str], kept: list[str]) -> None:
    for shown in (mask_url(url), redact(f"cannot reach {url}: refused"), mask_url(mask_url(url))):
        assert MASK in shown
        for secret in gone:
            assert secret not in shown, shown
        for part in kept:
            assert part in shown, shown


def test_text_without_credentials_is_left_as_it_is() -> None:
    for text in ("http://127.0.0.1:4200/api", "s3://bucket/prefix/runs/x/manifest.csv", "mail ops@example.com",
                 "https://shop.example/p?page=2&sort=price", "row 3: color=red"):
        assert mask_url(text) == text


def test_an_error_quoting_a_url_is_masked_when_made() -> None:
    err = StorageError(f"cannot reach S3 at http://minio:{USER_PW}@10.1.1.1:9000?password={QUERY_PW}")
    assert USER_PW not in str(err) and QUERY_PW not in err.message and "10.1.1.1:9000" in err.message
    assert isinstance(err, BananaflowError)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_redis_error_names_the_server_without_its_password() -> None:
    from bananaflow.limits.backends import RedisBackend

    url = f"redis://bf:{USER_PW}@127.0.0.1:{_closed_port()}/0?password={QUERY_PW}"
    with pytest.raises(ConfigurationError) as caught:
        RedisBackend(url)
    text = caught.value.message + str(caught.value)
    assert "cannot reach Redis at redis://***@127.0.0.1:" in text
    assert USER_PW not in text and QUERY_PW not in text


class _Healthy(BaseHTTPRequestHandler):
    """A Prefect API stand-in: ``/health`` answers 200 whatever the credentials."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200 if self.path.split("?")[0].endswith("/health") else 404)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def prefect_stand_in() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig(api_key=KEY)) as server:
        yield server


@pytest.mark.parametrize("in_query", [False, True], ids=["userinfo", "userinfo-and-query"])
def test_doctor_prints_no_credential_of_any_url(sim, prefect_stand_in, monkeypatch, capsys, in_query: bool) -> None:
    for name in ("GOOGLE_API_KEY", "OPENAI_API_KEY", "BANANAFLOW_PROVIDER", "BANANAFLOW_MODEL", "GOOGLE_GENAI_USE_VERTEXAI",
                 "GOOGLE_APPLICATION_CREDENTIALS", "AWS_ENDPOINT_URL", "PREFECT_UI_URL"):
        monkeypatch.delenv(name, raising=False)
    query = f"?password={QUERY_PW}&token={TOKEN}" if in_query else ""
    host = sim.base_url.removeprefix("http://")
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", f"http://relay:{USER_PW}@{host}{query}")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://minio:{USER_PW}@127.0.0.1:{_closed_port()}{query}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "doctor-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "doctor-secret-key")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("PREFECT_API_URL", f"http://admin:{USER_PW}@{prefect_stand_in}/api{query}")
    monkeypatch.setenv("BANANAFLOW_REDIS_URL", f"redis://:{USER_PW}@127.0.0.1:{_closed_port()}/0{query}")
    main(["doctor", "--bucket", "doctor-bucket"])
    out = capsys.readouterr()
    printed = out.out + out.err
    for name in ("provider", "bucket", "prefect", "redis"):
        assert any(line[5:].startswith(name) for line in printed.splitlines()), printed
    for secret in (USER_PW, QUERY_PW, TOKEN):
        assert secret not in printed, printed
    assert f"http://***@{host}" in printed  # still says where the provider is
    if not in_query:
        assert f"server at http://***@{prefect_stand_in}/api is healthy" in printed
