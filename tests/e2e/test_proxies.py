"""HTTPS_PROXY / HTTP_PROXY / NO_PROXY are honoured by the HTTP clients of a run: the provider
(Vertex AI), the OAuth token request and boto3, shown through a real forward proxy process on
127.0.0.1; NO_PROXY keeps the Prefect API direct.

Reference-photo downloads are the one exception, on purpose: they connect straight to the
address bananaflow resolved and checked (catalog/safe_fetch.py). A proxy would resolve the
host again itself, and a catalog row could then reach what the check refused."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from PIL import Image

from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer
from tests.e2e.conftest import write_catalog
from tests.e2e.test_cli import bananaflow
from tests.paths import ROOT
from tests.vertex_fixtures import PROJECT, new_key, write_service_account

pytestmark = pytest.mark.e2e


def _photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


photo_requests: list[str] = []


class _Photos(BaseHTTPRequestHandler):
    data = _photo()

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        photo_requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.data)))
        self.end_headers()
        self.wfile.write(self.data)


@pytest.fixture
def proxy(tmp_path):
    log = tmp_path / "proxy.log"
    log.touch()
    process = subprocess.Popen([sys.executable, "-m", "tests.e2e.forward_proxy", str(log)], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline())
        yield port, log
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_every_client_goes_through_the_proxy_and_no_proxy_is_honoured(prefect_api, s3_env, proxy, tmp_path):
    proxy_port, proxy_log = proxy
    photos = ThreadingHTTPServer(("127.0.0.1", 0), _Photos)
    threading.Thread(target=photos.serve_forever, daemon=True).start()
    private, public = new_key()
    try:
        with SimulatorServer(SimulatorConfig(latency_s=(0.01, 0.03), oauth_public_keys=(public,))) as sim:
            photo_url = f"http://127.0.0.1:{photos.server_address[1]}/mug.png"
            catalog = write_catalog(tmp_path / "c.csv", [
                {"sku": f"PRX-{i}", "title": f"Ceramic mug {i}", "image_link": photo_url} for i in range(2)])
            job = tmp_path / "job.yaml"
            job.write_text('variants:\n  - {name: main, prompt: "Studio shot of {{ title }}", aspect: "1:1", reference: true}\n')
            key_file = write_service_account(tmp_path / "sa.json", private, sim.base_url + "/token")
            prefect_host = urlsplit(prefect_api).netloc
            env = {k: v for k, v in os.environ.items() if not k.upper().startswith(
                ("PREFECT_", "GEMINI_", "GOOGLE_", "OPENAI_", "BANANAFLOW_", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
                 "ALL_PROXY"))}
            env.update(s3_env.env())
            proxy_url = f"http://127.0.0.1:{proxy_port}"
            env.update(PREFECT_API_URL=prefect_api, BANANAFLOW_SPOOL_DIR=str(tmp_path / "spool"),
                       GOOGLE_GENAI_USE_VERTEXAI="true", GOOGLE_CLOUD_PROJECT=PROJECT,
                       GOOGLE_APPLICATION_CREDENTIALS=str(key_file), GOOGLE_VERTEX_BASE_URL=sim.base_url,
                       HTTP_PROXY=proxy_url, HTTPS_PROXY=proxy_url, NO_PROXY=prefect_host,
                       BANANAFLOW_REFERENCE_ALLOW_PRIVATE="1")  # the photo server is on 127.0.0.1
            result = bananaflow(["run", str(catalog), "--bucket", "proxied", "--job", str(job), "--no-progress"], env)
            assert result.returncode == 0, result.stdout + result.stderr
            assert sim.oauth_stats()["tokens_issued"] == 1
            sim_host = urlsplit(sim.base_url).netloc
    finally:
        photos.shutdown()
    seen = proxy_log.read_text().splitlines()
    s3_host = urlsplit(s3_env.endpoint_url).netloc
    assert f"POST {sim_host} /token" in seen  # the OAuth token request (google-auth's requests)
    assert any(line.startswith(f"POST {sim_host} /v1/projects/{PROJECT}/") for line in seen)  # the provider (httpx)
    assert f"GET 127.0.0.1:{photos.server_address[1]} /mug.png" not in seen  # photos: straight to the checked address
    assert photo_requests, "the photo was fetched (directly)"
    assert any(line.startswith(("PUT " + s3_host, "HEAD " + s3_host)) for line in seen)  # boto3
    assert not any(prefect_host in line for line in seen)  # NO_PROXY
