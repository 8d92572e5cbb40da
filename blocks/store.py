"""Where images and manifests land."""
from __future__ import annotations

import os

import boto3
from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from bananaflow.landing.storage import ImageStore, make_s3_client


class ImageStoreBlock(Block):
    """An S3 bucket on any S3-compatible endpoint (AWS, MinIO, R2, SeaweedFS...), or a
    Cloud Storage bucket (``gs://``, credentials from ADC)."""

    _block_type_name = "Bananaflow Image Store"
    _block_type_slug = "bananaflow-image-store"
    _description = "S3 bucket, prefix, endpoint and credentials for generated images."

    bucket: str = Field(..., description="Bucket name (S3), or gs://bucket[/prefix] for Cloud Storage (ADC).")
    prefix: str = Field("bananaflow", description="Key prefix for images and manifests.")
    endpoint_url: str | None = Field(None, description="S3 endpoint; empty for AWS or AWS_ENDPOINT_URL_S3.")
    region: str | None = Field(None, description="Region, e.g. us-east-1.")
    access_key_id: str | None = Field(None, description="Empty to use boto3's usual credential chain.")
    secret_access_key: SecretStr | None = Field(None, description="Stored encrypted, shown masked.")
    public_base_url: str | None = Field(None, description="Public URL that serves the bucket, for write-back feeds.")

    def to_store(self) -> ImageStore:
        if self.bucket.startswith("gs://"):  # Cloud Storage: credentials from ADC
            from bananaflow.landing.destination import open_store, parse_destination

            where = parse_destination(self.bucket)
            return open_store(f"gs://{where.bucket}", where.prefix or self.prefix)
        client = None
        if self.access_key_id and self.secret_access_key:
            session = boto3.session.Session(
                aws_access_key_id=self.access_key_id,
                aws_secret_access_key=self.secret_access_key.get_secret_value(),
                region_name=self.region or os.environ.get("AWS_REGION") or "us-east-1",
            )
            client = make_s3_client(endpoint_url=self.endpoint_url, region=self.region, session=session)
        return ImageStore(self.bucket, self.prefix, client=client, endpoint_url=self.endpoint_url, region=self.region)
