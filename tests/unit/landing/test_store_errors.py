"""One table for both stores: the same failure from botocore and from google-cloud-storage
becomes the same kind of StorageError, each in its own service's words."""
from __future__ import annotations

import json

import botocore.exceptions
import pytest
import requests
from google.api_core import exceptions as google
from google.api_core.exceptions import RetryError
from google.auth.exceptions import DefaultCredentialsError, RefreshError

from bananaflow.landing.gcs import gcs_error
from bananaflow.landing.storage import storage_error
from tests.paths import FIXTURES


def _client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


def _recorded_403() -> google.Forbidden:
    body = json.loads((FIXTURES / "wire" / "gcs" / "gcs_403_objects_create_forbidden.json").read_text("utf-8"))
    return google.Forbidden(body["error"]["message"])


@pytest.mark.parametrize(("s3", "gcs", "kind"), [
    (botocore.exceptions.NoCredentialsError(), DefaultCredentialsError("none found"), "no_credentials"),
    (botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"),
     RetryError("gave up", requests.exceptions.ConnectionError("refused")), "unreachable"),
    (botocore.exceptions.ReadTimeoutError(endpoint_url="http://x"), requests.exceptions.ReadTimeout("slow"), "timeout"),
    (_client_error("InvalidAccessKeyId", 403), RefreshError("invalid_grant"), "bad_credentials"),
    (_client_error("AccessDenied", 403), _recorded_403(), "denied"),
    (_client_error("NoSuchKey", 404), google.NotFound("No such object: b/k"), "not_found"),
])
def test_the_same_failure_from_either_store_is_the_same_kind(s3, gcs, kind) -> None:
    from_s3 = storage_error(s3, "upload", bucket="b", key="k")
    from_gcs = gcs_error(gcs, "upload", bucket="b", key="k")
    assert from_s3.kind == from_gcs.kind == kind
    assert "Cloud Storage" not in from_s3.message and "S3" not in from_gcs.message


def test_each_store_says_its_own_fix() -> None:
    denied = gcs_error(_recorded_403(), "upload", bucket="b", key="k")
    assert denied.message == ("Cloud Storage denied access (403) to upload gs://b/k: grant the service account "
                              "roles/storage.objectAdmin on the bucket (it lacks storage.objects.create)")
    assert "GOOGLE_APPLICATION_CREDENTIALS" in gcs_error(DefaultCredentialsError("x"), "open", bucket="b").message
    assert storage_error(_client_error("AccessDenied", 403), "upload", bucket="b", key="k").message == (
        "S3 denied access (AccessDenied) to upload s3://b/k: check the bucket policy or keys")
    assert gcs_error(google.NotFound("x"), "list", bucket="b", key="p/", bucket_level=True).kind == "no_bucket"
    other = gcs_error(google.InternalServerError("backend error"), "upload", bucket="b", key="k")
    assert other.kind is None and other.message == "Cloud Storage could not upload gs://b/k: 500 InternalServerError: backend error"
