"""GcsStore, the S3 store's twin on Cloud Storage, against the real emulator through Google's
own client: the same answers as ``ImageStore`` (tests/unit/landing/test_storage.py), claims
that exactly one of two runs wins, V4 signed links, and errors from the one table."""
from __future__ import annotations

import threading
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from bananaflow.catalog.loader import load_catalog
from bananaflow.catalog.references import ReferenceFetcher, ReferencePhotoError
from bananaflow.errors import CatalogError, ConfigurationError, StorageError
from bananaflow.landing.claims import KeyClaims
from bananaflow.landing.destination import open_store, parse_destination, read_object_uri
from bananaflow.landing.gcs import GcsStore, gcs_error, signing_credentials
from bananaflow.landing.storage import ImageStore
from tests.vertex_fixtures import SA_EMAIL, new_key, service_account_info

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


@pytest.fixture
def store(gcs_env) -> GcsStore:
    made = open_store("gs://images/shop")
    assert isinstance(made, GcsStore) and isinstance(made, ImageStore)
    made.ensure_bucket()
    made.ensure_bucket()  # idempotent
    return made


def test_put_get_head_find_like_s3(store: GcsStore) -> None:
    stem = store.image_stem("MUG 01/blue", "main", "abcdef123456")
    assert stem.startswith("shop/") and store.find_existing(stem) is None
    key = store.image_key("MUG 01/blue", "main", "abcdef123456", "png")
    meta = {"sku": "MUG 01/blue", "title": "Tasse à café ☕", "prompt_sha256": "0" * 64, "multi": "a\nb"}
    assert store.put_image(key, PNG, "image/png", meta) is True
    assert store.find_existing(stem) == key and store.find_existing(stem[:-1]) is None
    assert store.get_bytes(key) == PNG
    assert store.exists(key) and not store.exists(key + ".nope")
    head = store.head(key)
    assert (head.content_type, head.size, head.key, head.metadata) == ("image/png", len(PNG), key, meta)
    assert store.uri(key) == f"gs://images/{key}" and store.spool_name == "gs:images"
    store.put_image(stem + "~claim", b"{}", "application/json")
    store.put_image(stem + "~blocked.json", b"{}", "application/json")
    assert store.find_with_sidecars(stem) == (key, [stem + "~blocked.json", stem + "~claim"])
    assert store.list_keys(stem + "~") == [stem + "~blocked.json", stem + "~claim"]
    store.delete(stem + "~claim")
    store.delete(stem + "~claim")  # gone already: not an error, as in S3
    assert read_object_uri(store.uri(key)) == PNG


def test_two_runs_claiming_one_key_at_once_exactly_one_holds_it(store: GcsStore) -> None:
    stem = store.image_stem("RACE-1", "main", "0123456789ab")
    won: list[bool] = []
    start = threading.Barrier(2)

    def claim(run_id: str) -> None:
        claims = KeyClaims(store, run_id, lease_s=60)
        start.wait()
        won.append(claims.try_claim(stem))

    threads = [threading.Thread(target=claim, args=(f"run-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(won) == [False, True]
    assert store.put_image(store.key("x.png"), b"1", "image/png", if_absent=True) is True
    assert store.put_image(store.key("x.png"), b"2", "image/png", if_absent=True) is False
    assert store.get_bytes(store.key("x.png")) == b"1"


def test_a_large_file_is_uploaded_in_chunks_whole(store: GcsStore, tmp_path: Path) -> None:
    big = tmp_path / "manifest.csv"
    big.write_bytes(b"x" * (9 * 1024 * 1024) + b"end")
    store.put_file(store.key("runs", "m.csv"), big, "text/csv")
    assert store.get_bytes(store.key("runs", "m.csv")) == big.read_bytes()


def test_links_are_v4_signed_with_the_service_account_key(store: GcsStore, gcs_env) -> None:
    private, _ = new_key()
    signer = signing_credentials(service_account_info(private, "http://127.0.0.1:9/token"))
    signed = GcsStore("images", "shop", signer=signer)
    key = signed.key("presign", "a b.png")
    signed.put_bytes(key, PNG, "image/png")
    url = signed.presigned_url(key, expires_s=30 * 86400)
    query = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"]
    assert query["X-Goog-Credential"][0].startswith(SA_EMAIL + "/")
    assert query["X-Goog-Expires"] == ["604800"]  # Cloud Storage's longest: seven days
    assert url.startswith(gcs_env.endpoint_url)
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310  # the emulator on 127.0.0.1
        assert response.read() == PNG
    assert private.splitlines()[1] not in url
    # nothing to sign with on the emulator: its plain object URL (it checks no signature)
    plain = GcsStore("images", "shop", signer=None)
    plain._signer = None
    with urllib.request.urlopen(plain.presigned_url(key), timeout=10) as response:  # noqa: S310
        assert response.read() == PNG


def test_errors_read_like_s3s_from_the_one_table(gcs_env, monkeypatch) -> None:
    from google.api_core import exceptions

    missing = GcsStore("no-such-bucket-here")
    with pytest.raises(StorageError, match="bucket 'no-such-bucket-here' does not exist") as info:
        missing.find_existing("a/b")
    assert info.value.kind == "no_bucket"
    store = open_store("gs://images")
    with pytest.raises(StorageError, match=r"gs://images/nothing.png does not exist"):
        store.get_bytes("nothing.png")
    denied = exceptions.Forbidden("x@p.iam.gserviceaccount.com does not have storage.objects.create access to "
                                  "the Google Cloud Storage object.")
    error = gcs_error(denied, "upload", bucket="b", key="k.png")
    assert error.kind == "denied" and "roles/storage.objectAdmin" in error.message
    assert "storage.objects.create" in error.message and error.message.startswith("Cloud Storage denied access (403)")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")  # nobody listens there
    monkeypatch.setenv("BANANAFLOW_GCS_RETRY_S", "1")
    with pytest.raises(StorageError, match="cannot reach Cloud Storage at http://127.0.0.1:9") as info:
        GcsStore("images").get_bytes("k")
    assert info.value.kind == "unreachable"


def test_destinations_name_the_store_and_the_prefix_once() -> None:
    assert parse_destination("gs://shop/cat/alog/") == parse_destination("gs://shop", "cat/alog")
    assert parse_destination("gs://shop/catalog").uri == "gs://shop/catalog"
    assert parse_destination("shop", "p").scheme == "s3" and parse_destination("s3://shop/p").prefix == "p"
    with pytest.raises(ConfigurationError, match="give the prefix once"):
        parse_destination("gs://shop/a", "b")
    with pytest.raises(ConfigurationError, match="gs://bucket"):
        parse_destination("azure://shop")


def test_catalogs_and_photos_come_from_gs_under_the_allow_list(store: GcsStore, gcs_env, tmp_path, monkeypatch) -> None:
    import asyncio
    import io

    from PIL import Image

    photo = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(photo, format="JPEG")
    gcs_env.create_bucket("feeds")
    gcs_env.create_bucket("elsewhere")
    feeds = gcs_env.client().bucket("feeds")
    feeds.blob("shop/photos/mug.jpg").upload_from_string(photo.getvalue(), content_type="image/jpeg")
    gcs_env.client().bucket("elsewhere").blob("mug.jpg").upload_from_string(photo.getvalue())
    feeds.blob("shop/catalog.csv").upload_from_string(
        "sku,title,image_link\nMUG-1,Mug,photos/mug.jpg\nMUG-2,Mug,gs://elsewhere/mug.jpg\n")
    loaded = load_catalog("gs://feeds/shop/catalog.csv")
    assert [row.sku for row in loaded.accepted] == ["MUG-1", "MUG-2"] and not loaded.rejected
    with pytest.raises(CatalogError, match="gs://feeds/shop/none.csv does not exist"):
        load_catalog("gs://feeds/shop/none.csv")

    fetcher = ReferenceFetcher()
    root = "gs://feeds/shop/"
    got = asyncio.run(fetcher.fetch("gs://feeds/shop/photos/mug.jpg", 256, root=root, buckets=("gs://images", "gs://feeds")))
    assert got.mime_type == "image/jpeg"
    with pytest.raises(ReferencePhotoError):  # another bucket, not listed
        asyncio.run(fetcher.fetch("gs://elsewhere/mug.jpg", 256, root=root, buckets=("gs://images", "gs://feeds")))
    with pytest.raises(ReferencePhotoError):  # an S3 bucket of the same name opens nothing on Cloud Storage
        asyncio.run(fetcher.fetch("gs://elsewhere/mug.jpg", 256, root=root, buckets=("elsewhere",)))
    monkeypatch.setenv("BANANAFLOW_REFERENCE_BUCKETS", "gs://elsewhere")
    listed = ReferenceFetcher()
    assert asyncio.run(listed.fetch("gs://elsewhere/mug.jpg", 256, root=root, buckets=())).mime_type == "image/jpeg"
