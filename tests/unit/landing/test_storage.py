"""ImageStore against a real SeaweedFS ``weed mini`` (one per module)."""
from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bananaflow.catalog.loader import load_catalog
from bananaflow.catalog.references import ReferenceFetcher, ReferencePhotoError
from bananaflow.devstack.local_s3 import LocalS3Server, find_weed, pick_ports
from bananaflow.errors import CatalogError, ConfigurationError, StorageError
from bananaflow.landing.run_history import latest_manifest_key
from bananaflow.landing.storage import ImageStore, make_s3_client, read_s3_uri
from bananaflow.planning.delta import latest_manifest

pytestmark = pytest.mark.e2e  # a real S3 server (weed mini)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3Server]:
    with LocalS3Server(tmp_path_factory.mktemp("s3")) as srv:
        yield srv


@pytest.fixture(scope="module")
def store(server: LocalS3Server) -> ImageStore:
    client = _client(server, server.secret_key.reveal())
    s = ImageStore("images", prefix="/shop/", client=client)
    s.ensure_bucket()
    s.ensure_bucket()  # idempotent
    return s


def _client(server: LocalS3Server, secret: str, endpoint: str | None = None, attempts: int = 5) -> object:
    import boto3
    import botocore.config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint or server.endpoint_url,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=botocore.config.Config(signature_version="s3v4", retries={"max_attempts": attempts, "mode": "standard"}),
    )


def test_server_exposes_env(server: LocalS3Server) -> None:
    env = server.env()
    assert env["AWS_ENDPOINT_URL_S3"] == server.endpoint_url.rstrip("/")
    assert env["AWS_ACCESS_KEY_ID"] == "bananaflow" and env["AWS_REGION"] == "us-east-1"
    assert env["AWS_SECRET_ACCESS_KEY"] == server.secret_key.reveal()
    assert server.secret_key.reveal() not in repr(server.secret_key)
    assert all(p + 10000 < 32768 for p in server.ports.values())
    assert Path(find_weed()).is_file()


def test_put_get_head_find_existing(store: ImageStore) -> None:
    stem = store.image_stem("MUG 01/blue", "main", "abcdef123456")
    assert stem.startswith("shop/") and store.find_existing(stem) is None
    key = store.image_key("MUG 01/blue", "main", "abcdef123456", "png")
    meta = {"sku": "MUG 01/blue", "title": "Tasse à café ☕", "prompt_sha256": "0" * 64, "multi": "a\nb"}
    assert store.put_image(key, PNG, "image/png", meta) is True
    assert store.find_existing(stem) == key
    assert store.find_existing(stem[:-1]) is None  # a stem is not a prefix match
    assert store.get_bytes(key) == PNG
    assert store.exists(key) and not store.exists(key + ".nope")
    head = store.head(key)
    assert head.content_type == "image/png" and head.size == len(PNG) and head.key == key
    assert head.metadata == meta
    # already-ASCII values (the pipeline quotes its own) pass through untouched
    store.put_image(key, PNG, "image/png", {"bananaflow-sku": "MUG%2001"})
    assert store.head(key).metadata == {"bananaflow-sku": "MUG%2001"}
    assert store.uri(key) == f"s3://images/{key}"


def test_find_with_sidecars_answers_from_one_listing(store: ImageStore) -> None:
    stem = store.image_stem("LOOK-1", "main", "0123456789ab")
    assert store.find_with_sidecars(stem) == (None, [])
    store.put_image(stem + "~claim", b"{}", "application/json")  # a claim is no image
    store.put_image(stem + "0.png", PNG, "image/png")  # a longer stem is not this one's image
    store.put_image(stem + "./nested.png", PNG, "image/png")  # nor is a key below it
    assert store.find_with_sidecars(stem) == (None, [stem + "~claim"])
    store.put_image(stem + "~blocked.json", b"{}", "application/json")
    assert store.find_with_sidecars(stem) == (None, [stem + "~blocked.json", stem + "~claim"])
    store.put_image(stem + ".webp", PNG, "image/webp")
    store.put_image(stem + ".png", PNG, "image/png")
    image, sidecars = store.find_with_sidecars(stem)
    assert image == stem + ".png" == store.find_existing(stem)  # as find_existing: the first in order
    assert sidecars == [stem + "~blocked.json", stem + "~claim"]


def test_conditional_put_does_not_overwrite(store: ImageStore) -> None:
    key = store.key("race", "img.png")
    assert store.put_image(key, b"first", "image/png", if_absent=True) is True
    assert store.put_image(key, b"second", "image/png", if_absent=True) is False
    assert store.get_bytes(key) == b"first"


def test_presigned_get_fetches_the_bytes(store: ImageStore) -> None:
    key = store.key("presign", "a.png")
    store.put_bytes(key, PNG, "image/png")
    url = store.presigned_url(key, expires_s=300)
    assert "X-Amz-Signature" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == PNG
    tampered = url.replace("presign/a.png", "presign/b.png")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(tampered, timeout=10)
    assert info.value.code == 403


def test_missing_object_is_a_storage_error(store: ImageStore) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        store.get_bytes(store.key("nothing-here.png"))


def test_bad_secret_is_refused_without_leaking_it(server: LocalS3Server) -> None:
    wrong = "WrongSecretValue-123456789"
    bad = ImageStore("images", client=_client(server, wrong, attempts=1))
    with pytest.raises(StorageError) as info:
        bad.put_bytes("x.txt", b"x", "text/plain")
    text = str(info.value) + repr(info.value)
    assert "refused the credentials" in text or "denied" in text
    assert wrong not in text and server.secret_key.reveal() not in text


def test_a_file_larger_than_one_part_is_uploaded_from_disk_whole(store: ImageStore, tmp_path: Path) -> None:
    """A manifest goes up from its file in parts (multipart above 8 MB), not read whole."""
    path = tmp_path / "manifest.csv"
    line = b"SKU-000001,main,succeeded,s3://images/shop/SKU-000001/main-0123456789ab.png\n"
    path.write_bytes(line * (20 * 1024 * 1024 // len(line)))  # 20 MB: three parts
    key = store.key("runs", "big", "manifest.csv")
    store.put_file(key, path, "text/csv; charset=utf-8")
    assert store.get_bytes(key) == path.read_bytes()
    head = store.head(key)
    assert head.content_type.startswith("text/csv") and head.etag.endswith("-3"), "a multipart upload"


def test_a_file_upload_refused_by_s3_is_a_storage_error(server: LocalS3Server, tmp_path: Path) -> None:
    path = tmp_path / "manifest.csv"
    path.write_bytes(b"sku\n")
    wrong = "WrongSecretValue-123456789"
    bad = ImageStore("images", client=_client(server, wrong, attempts=1))
    with pytest.raises(StorageError) as info:
        bad.put_file("runs/x/manifest.csv", path, "text/csv")
    text = str(info.value)
    assert "refused the credentials" in text or "denied" in text
    assert wrong not in text + repr(info.value)


def test_server_down_is_a_clear_storage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "someone")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "something-secret")
    port = pick_ports()["s3"]  # free, so nothing listens there
    endpoint = f"http://127.0.0.1:{port}"
    down = ImageStore("images", client=make_s3_client(endpoint_url=endpoint, region="us-east-1", max_attempts=1))
    with pytest.raises(StorageError) as info:
        down.ensure_bucket()
    assert str(info.value) == f"cannot reach S3 at {endpoint}: is the server running?"
    with pytest.raises(StorageError, match="cannot reach S3"):  # a file upload says the same
        down.put_file("runs/x/manifest.csv", Path(__file__), "text/plain")


def test_standard_env_vars_configure_the_client(server: LocalS3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    s = ImageStore("env-bucket")
    s.ensure_bucket()
    s.put_bytes("catalogs/c.csv", b"sku,title\n007,Lamp\n", "text/csv")
    load = load_catalog("s3://env-bucket/catalogs/c.csv")
    assert load.accepted[0].sku == "007" and load.source == "s3://env-bucket/catalogs/c.csv"


def test_catalogs_photos_and_stores_read_s3_alike(server: LocalS3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    ImageStore("read-bucket").ensure_bucket()
    missing = "s3://read-bucket/nothing.csv"
    with pytest.raises(StorageError, match=f"^{missing} does not exist$"):
        read_s3_uri(missing)
    with pytest.raises(CatalogError, match=f"cannot read catalog {missing}: {missing} does not exist"):
        load_catalog(missing)
    with pytest.raises(ReferencePhotoError, match=f"reference photo {missing} cannot be used"):  # one text for all
        asyncio.run(ReferenceFetcher().fetch(missing, 512, buckets=("read-bucket",)))
    with pytest.raises(CatalogError, match="'s3://read-bucket' is not s3://bucket/key"):
        load_catalog("s3://read-bucket")


def test_newest_run_manifest_under_a_prefix(server: LocalS3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    store = ImageStore("runs-bucket")
    store.ensure_bucket()
    assert latest_manifest(store, "shop") is None
    for run in ("20260101T000000Z-a", "20260301T000000Z-c", "20260201T000000Z-b"):
        store.put_bytes(f"shop/runs/{run}/manifest.parquet", b"x", "application/octet-stream")
    store.put_bytes("shop/runs/20260401T000000Z-d/manifest.csv", b"x", "text/csv")
    assert latest_manifest(store, "/shop/") == "s3://runs-bucket/shop/runs/20260301T000000Z-c/manifest.parquet"
    assert latest_manifest_key(ImageStore("runs-bucket", "shop")) == "shop/runs/20260301T000000Z-c/manifest.parquet"


def test_unreachable_bucket_for_latest_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "someone")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "something-secret")
    endpoint = f"http://127.0.0.1:{pick_ports()['s3']}"
    down = ImageStore("images", client=make_s3_client(endpoint_url=endpoint, region="us-east-1", max_attempts=1))
    with pytest.raises(ConfigurationError, match=f"cannot list earlier runs: cannot reach S3 at {endpoint}"):
        latest_manifest(down, "shop")


def test_no_credentials(monkeypatch: pytest.MonkeyPatch, server: LocalS3Server, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s = ImageStore("images", endpoint_url=server.endpoint_url, region="us-east-1")
    with pytest.raises(StorageError, match="no S3 credentials"):
        s.ensure_bucket()


def test_detached_server_is_stopped_from_its_state_dir(tmp_path: Path) -> None:
    detached = LocalS3Server(tmp_path / "detached").start(detach=True)
    pid = detached.pid
    assert (tmp_path / "detached" / "server.json").exists()
    assert LocalS3Server.stop_detached(tmp_path / "detached") is True
    assert not Path(f"/proc/{pid}/cmdline").exists() or not Path(f"/proc/{pid}/cmdline").read_bytes()
    assert LocalS3Server.stop_detached(tmp_path / "detached") is False


def test_busy_fixed_port_is_a_configuration_error(server: LocalS3Server, tmp_path: Path) -> None:
    from bananaflow.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="must be free"):
        LocalS3Server(tmp_path / "busy", s3_port=server.ports["s3"]).start()


def _fake_weed(tmp_path: Path, body: str) -> str:
    script = tmp_path / "weed"
    script.write_text("#!/bin/sh\n" + body + "\n", "utf-8")
    script.chmod(0o755)
    return str(script)


def test_start_failure_quotes_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANANAFLOW_WEED", _fake_weed(tmp_path, 'echo "listen tcp: bind: address already in use"; exit 3'))
    with pytest.raises(StorageError) as info:
        LocalS3Server(tmp_path / "state").start()
    assert "exited with code 3" in str(info.value) and "address already in use" in str(info.value)


def test_start_timeout_quotes_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANANAFLOW_WEED", _fake_weed(tmp_path, 'echo "waiting for master"; exec sleep 30'))
    port = pick_ports()["s3"]
    server = LocalS3Server(tmp_path / "state", s3_port=port, startup_timeout=1)
    with pytest.raises(StorageError) as info:
        server.start()
    assert "did not answer within 1 s" in str(info.value) and "waiting for master" in str(info.value)
    assert not server.running
