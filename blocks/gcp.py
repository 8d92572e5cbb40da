"""Vertex AI credentials and the Cloud Storage store from prefect-gcp's own blocks.

A Prefect user who keeps a service account in a ``GcpCredentials`` block names it in
``blocks.gcp_credentials`` instead of entering it again: its ``service_account_info`` (or
the file its ``service_account_file`` names) becomes the Vertex route's credentials, its
``project`` the project when ``GOOGLE_CLOUD_PROJECT`` is not set; a block with neither uses
ADC, as prefect-gcp does. Location and endpoint still follow google-genai's variables.

The same service account usually writes the images: with a ``gs://`` bucket, or a
``GcsBucket`` block named in ``blocks.gcs_bucket``, ``store_from_prefect_gcp`` opens the
Cloud Storage store with the block's credentials.
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from bananaflow.errors import ConfigurationError
from bananaflow.landing.storage import ImageStore
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import Secret, register_secret


def vertex_settings_from_block(name: str, model: str | None = None) -> ProviderSettings:
    """The Vertex route's settings with the credentials and project of ``GcpCredentials`` ``name``."""
    try:
        from prefect_gcp import GcpCredentials
    except ImportError:  # pragma: no cover - prefect-gcp is a dependency
        raise ConfigurationError("blocks.gcp_credentials needs the prefect-gcp package") from None
    block = GcpCredentials.load(name)
    environ = dict(os.environ)
    environ.setdefault("GOOGLE_GENAI_USE_VERTEXAI", "true")
    if block.project and not environ.get("GOOGLE_CLOUD_PROJECT"):
        environ["GOOGLE_CLOUD_PROJECT"] = block.project
    settings = ProviderSettings.from_env(environ, kind="vertex", model=model)
    info = block.service_account_info.get_secret_value() if block.service_account_info else None
    if info is None and block.service_account_file:
        try:
            info = json.loads(Path(block.service_account_file).expanduser().read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"GcpCredentials block {name!r}: cannot read service_account_file ({type(exc).__name__})"
            ) from None
    if info is None:
        return settings
    if isinstance(info, dict):
        register_secret(str(info.get("private_key") or ""))
    return replace(settings, gcp_credentials=Secret(json.dumps(dict(info))))


def store_from_prefect_gcp(
    *, gcs_bucket: str | None, gcp_credentials: str | None, bucket: str | None, prefix: str | None, default_prefix: str
) -> ImageStore:
    """The Cloud Storage store prefect-gcp's blocks describe: a ``GcsBucket`` (bucket, folder,
    credentials), or a ``GcpCredentials`` plus ``delivery.bucket`` (``gs://bucket[/prefix]``).
    The run's bucket and prefix win over the block's; its service account signs the links."""
    from prefect_gcp import GcpCredentials, GcsBucket

    from bananaflow.landing.destination import parse_destination
    from bananaflow.landing.gcs import GcsStore, make_gcs_client, signing_credentials

    credentials_block = GcpCredentials.load(gcp_credentials) if gcp_credentials else None
    name = None
    if gcs_bucket:
        block = GcsBucket.load(gcs_bucket)
        credentials_block = credentials_block or block.gcp_credentials
        name = block.bucket
        if prefix is None:
            prefix = block.bucket_folder or None
    if bucket:
        where = parse_destination(bucket if "://" in bucket else f"gs://{bucket}", prefix)
        if where.scheme != "gs":
            raise ConfigurationError(f"--bucket {bucket} is not a Cloud Storage bucket; prefect-gcp blocks need gs://")
        name, prefix = where.bucket, where.prefix
    if not name:
        raise ConfigurationError("blocks.gcp_credentials needs a bucket: set delivery.bucket (--bucket gs://...) "
                                 "or name a GcsBucket block in blocks.gcs_bucket")
    info = None
    if credentials_block is not None and credentials_block.service_account_info:
        info = credentials_block.service_account_info.get_secret_value()
        register_secret(str(info.get("private_key") or ""))
    credentials = credentials_block.get_credentials_from_service_account() if credentials_block is not None else None
    project = credentials_block.project if credentials_block is not None else None
    client = make_gcs_client(credentials=credentials, project=project)
    return GcsStore(name, prefix if prefix is not None else default_prefix, client=client,
                    signer=signing_credentials(info) if info else credentials)
