"""The image store from prefect-aws's own blocks: ``S3Bucket``, or ``AwsCredentials`` plus a bucket.

A Prefect user who registered an ``S3Bucket`` block (bucket, folder, credentials) or an
``AwsCredentials`` block names it in ``blocks.s3_bucket`` / ``blocks.aws_credentials``
instead of entering the keys again in an ``ImageStoreBlock``. The credentials' boto3 session,
region and ``aws_client_parameters.endpoint_url`` (any S3-compatible store) go into
bananaflow's own S3 client settings (SigV4, retries, a pool for parallel uploads). The run's
``delivery.bucket``/``delivery.prefix`` win over the block's bucket and folder.
"""
from __future__ import annotations

from typing import Any

from bananaflow.errors import ConfigurationError
from bananaflow.landing.storage import ImageStore, make_s3_client


def store_from_prefect_aws(
    *, s3_bucket: str | None, aws_credentials: str | None, bucket: str | None, prefix: str | None, default_prefix: str
) -> ImageStore:
    """The store the prefect-aws blocks describe (``S3Bucket`` first, else ``AwsCredentials``)."""
    from prefect_aws import AwsCredentials, S3Bucket

    credentials: Any
    if s3_bucket:
        block = S3Bucket.load(s3_bucket)
        credentials = AwsCredentials.load(aws_credentials) if aws_credentials else block.credentials
        bucket = bucket or block.bucket_name
        if prefix is None:
            prefix = block.bucket_folder or default_prefix
    else:
        credentials = AwsCredentials.load(aws_credentials)
        if not bucket:
            raise ConfigurationError("blocks.aws_credentials needs a bucket: set delivery.bucket (--bucket) "
                                     "or name an S3Bucket block in blocks.s3_bucket")
    params = getattr(credentials, "aws_client_parameters", None)
    endpoint_url = getattr(params, "endpoint_url", None)
    session = credentials.get_boto3_session()
    region = getattr(credentials, "region_name", None) or session.region_name
    client = make_s3_client(endpoint_url=endpoint_url, region=region, session=session)
    return ImageStore(bucket, prefix if prefix is not None else default_prefix, client=client, region=region)
