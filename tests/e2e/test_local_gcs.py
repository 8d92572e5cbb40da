"""The Cloud Storage emulator behind the GCS store: reached by Google's own client through
STORAGE_EMULATOR_HOST, it holds a write's precondition as Cloud Storage does (two writers
stating ``if_generation_match=0``: exactly one lands), and a restart keeps port and objects."""
from __future__ import annotations

import threading

import pytest
from google.api_core import exceptions
from google.cloud import storage

pytestmark = pytest.mark.e2e


def test_the_real_client_reaches_the_emulator_through_the_standard_variable(gcs_env):
    gcs_env.create_bucket("env-bucket")
    client = storage.Client()  # no credentials, no project: the environment says where
    blob = client.bucket("env-bucket").blob("a/b.png")
    blob.metadata = {"bananaflow-run-id": "r1"}
    blob.upload_from_string(b"\x89PNG", content_type="image/png")
    got = client.bucket("env-bucket").get_blob("a/b.png")
    assert (got.content_type, got.metadata, got.download_as_bytes()) == ("image/png", {"bananaflow-run-id": "r1"}, b"\x89PNG")
    assert [b.name for b in client.list_blobs("env-bucket", prefix="a/")] == ["a/b.png"]


@pytest.mark.parametrize("size", [1024, 9 * 1024 * 1024], ids=["multipart", "resumable"])
def test_of_two_writers_stating_generation_zero_exactly_one_lands(gcs_server, size):
    gcs_server.create_bucket("race")
    key = f"claims/{size}~claim"
    results: list[str] = []
    start = threading.Barrier(2)

    def write(owner: bytes) -> None:
        blob = gcs_server.client().bucket("race").blob(key)
        start.wait()
        try:
            blob.upload_from_string(owner * size, if_generation_match=0)
            results.append("landed")
        except exceptions.PreconditionFailed:
            results.append("refused")

    threads = [threading.Thread(target=write, args=(owner,)) for owner in (b"a", b"b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == ["landed", "refused"]
    stored = gcs_server.client().bucket("race").blob(key).download_as_bytes()
    assert stored in (b"a" * size, b"b" * size)


def test_a_delete_holds_its_generation_and_a_restart_keeps_port_and_objects(gcs_server):
    gcs_server.create_bucket("keep")
    bucket = gcs_server.client().bucket("keep")
    bucket.blob("x").upload_from_string(b"1")
    generation = bucket.get_blob("x").generation
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("x").delete(if_generation_match=generation + 1)
    port = gcs_server.port
    gcs_server.stop()
    assert not gcs_server.running
    gcs_server.start()
    assert gcs_server.port == port
    bucket = gcs_server.client().bucket("keep")
    assert bucket.blob("x").download_as_bytes() == b"1"
    bucket.blob("x").delete(if_generation_match=generation)
    assert bucket.get_blob("x") is None


def test_a_refused_precondition_is_answered_with_cloud_storages_own_body(gcs_server):
    import json
    import urllib.error
    import urllib.request

    from tests.paths import FIXTURES

    gcs_server.create_bucket("wire")
    gcs_server.client().bucket("wire").blob("k").upload_from_string(b"1")
    url = f"{gcs_server.endpoint_url}/upload/storage/v1/b/wire/o?uploadType=media&name=k&ifGenerationMatch=0"
    request = urllib.request.Request(url, data=b"2", method="POST", headers={"Content-Type": "text/plain"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310  # the emulator on 127.0.0.1
    assert refused.value.code == 412
    recorded = json.loads((FIXTURES / "wire" / "gcs_412_condition_not_met.json").read_text("utf-8"))
    assert json.loads(refused.value.read()) == recorded
