"""Prefect's own cloud blocks configure the store: a prefect-aws ``S3Bucket`` block (with its
``AwsCredentials``), or ``AwsCredentials`` plus the run's bucket, against weed mini; no AWS
variables in the environment. (The prefect-gcp ``GcpCredentials`` block for the Vertex route
is in test_vertex_run.py.)"""
from __future__ import annotations

import pytest
from pydantic import SecretStr

from tests.e2e.conftest import products, write_catalog
from tests.e2e.test_catalog_flow import run, s3_client

pytestmark = pytest.mark.e2e


def _credentials(s3_env):
    from prefect_aws import AwsCredentials
    from prefect_aws.credentials import AwsClientParameters

    return AwsCredentials(aws_access_key_id=s3_env.access_key,
                          aws_secret_access_key=SecretStr(s3_env.secret_key.reveal()), region_name="us-east-1",
                          aws_client_parameters=AwsClientParameters(endpoint_url=s3_env.endpoint_url))


def test_s3_bucket_and_aws_credentials_blocks_configure_the_store(prefect_api, s3_env, provider_env, tmp_path, monkeypatch):
    from prefect_aws import S3Bucket

    s3_client(s3_env).create_bucket(Bucket="prefect-aws-blocks")
    credentials = _credentials(s3_env)
    credentials.save("e2e-aws", overwrite=True)
    S3Bucket(bucket_name="prefect-aws-blocks", bucket_folder="from-s3-bucket", credentials=credentials).save(
        "e2e-s3-bucket", overwrite=True)
    for var in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)

    summary = run(catalog=str(write_catalog(tmp_path / "a.csv", products(2, "AWSB"))), s3_bucket="e2e-s3-bucket")
    assert summary["counts"] == {"succeeded": 2}
    assert summary["bucket"] == "prefect-aws-blocks" and summary["prefix"] == "from-s3-bucket"

    summary = run(catalog=str(write_catalog(tmp_path / "b.csv", products(2, "AWSC"))), aws_credentials="e2e-aws",
                  bucket="prefect-aws-blocks", prefix="from-credentials")
    assert summary["counts"] == {"succeeded": 2} and summary["prefix"] == "from-credentials"
    keys = [o["Key"] for o in s3_client(s3_env).list_objects_v2(Bucket="prefect-aws-blocks")["Contents"]]
    assert sum(k.startswith("from-s3-bucket/") and k.endswith(".png") for k in keys) == 2
    assert sum(k.startswith("from-credentials/") and k.endswith(".png") for k in keys) == 2
