"""Blocks filled in from the environment, so a server's blocks match what a script would use.

``bananaflow blocks create-from-env`` saves the three blocks the deployments name
(``bananaflow-provider``, ``bananaflow-store``, ``bananaflow-limits``). Secrets go into the
blocks' ``SecretStr`` fields, which Prefect stores encrypted and shows masked; nothing here
prints or logs them.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import SecretStr

from bananaflow.errors import ConfigurationError
from bananaflow_prefect.blocks.limits import GenerationLimits
from bananaflow_prefect.blocks.provider import ImageProviderBlock
from bananaflow_prefect.blocks.store import ImageStoreBlock

PROVIDER_BLOCK, STORE_BLOCK, LIMITS_BLOCK = "bananaflow-provider", "bananaflow-store", "bananaflow-limits"


@dataclass(frozen=True)
class SavedBlocks:
    provider: str
    store: str
    limits: str


def store_block_from_env(bucket: str, prefix: str = "bananaflow", environ: Mapping[str, str] = os.environ) -> ImageStoreBlock:
    """The bucket plus boto3's standard variables (endpoint, region, keys)."""
    secret = environ.get("AWS_SECRET_ACCESS_KEY")
    return ImageStoreBlock(
        bucket=bucket,
        prefix=prefix,
        endpoint_url=environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None,
        region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None,
        access_key_id=environ.get("AWS_ACCESS_KEY_ID") or None,
        secret_access_key=SecretStr(secret) if secret else None,
        public_base_url=environ.get("BANANAFLOW_PUBLIC_BASE_URL") or None,
    )


def limits_block_from_env(environ: Mapping[str, str] = os.environ) -> GenerationLimits:
    """``BANANAFLOW_MAX_IN_FLIGHT``, ``BANANAFLOW_RPM``, ``BANANAFLOW_MAX_ATTEMPTS``,
    ``BANANAFLOW_DEADLINE_S``; unset ones keep the block's defaults."""
    fields = {
        "max_in_flight": ("BANANAFLOW_MAX_IN_FLIGHT", int),
        "requests_per_minute": ("BANANAFLOW_RPM", float),
        "max_attempts": ("BANANAFLOW_MAX_ATTEMPTS", int),
        "deadline_s": ("BANANAFLOW_DEADLINE_S", float),
    }
    values = {}
    for field, (var, kind) in fields.items():
        raw = (environ.get(var) or "").strip()
        if raw:
            try:
                values[field] = kind(raw)
            except ValueError:
                raise ConfigurationError(f"{var}={raw!r} is not a number") from None
    return GenerationLimits(**values)


def save_blocks_from_env(bucket: str, prefix: str = "bananaflow", *, overwrite: bool = True) -> SavedBlocks:
    """Register the block types and save the three blocks on the current Prefect server."""
    from bananaflow_prefect.blocks import register_all

    register_all()
    provider = ImageProviderBlock.from_env()
    provider.save(PROVIDER_BLOCK, overwrite=overwrite)
    store_block_from_env(bucket, prefix).save(STORE_BLOCK, overwrite=overwrite)
    limits_block_from_env().save(LIMITS_BLOCK, overwrite=overwrite)
    return SavedBlocks(PROVIDER_BLOCK, STORE_BLOCK, LIMITS_BLOCK)
