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

from pydantic import SecretStr, ValidationError

from bananaflow.errors import ConfigurationError
from bananaflow.limits.settings import LimitSettings
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


#: Short names kept for variables that existed before every limit could be set this way.
_LIMIT_ENV_ALIASES = {"requests_per_minute": "BANANAFLOW_RPM"}


def limit_env_var(field: str) -> str:
    """``BANANAFLOW_<FIELD>`` (``BANANAFLOW_RPM`` for requests per minute)."""
    return _LIMIT_ENV_ALIASES.get(field, f"BANANAFLOW_{field.upper()}")


def limits_block_from_env(environ: Mapping[str, str] = os.environ) -> GenerationLimits:
    """Every ``LimitSettings`` field from ``BANANAFLOW_<FIELD>`` (``BANANAFLOW_MAX_IN_FLIGHT``,
    ``BANANAFLOW_RPM``, ``BANANAFLOW_WORKER_SLOTS`` ...); unset ones keep the block's defaults."""
    values = {}
    for field in LimitSettings.model_fields:
        raw = (environ.get(limit_env_var(field)) or "").strip()
        if raw:
            values[field] = raw
    try:
        return GenerationLimits(**values)
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = str(problem["loc"][0])
        var = limit_env_var(field)
        raise ConfigurationError(f"{var}={environ.get(var)!r}: {problem['msg']}") from None


def save_blocks_from_env(bucket: str, prefix: str = "bananaflow", *, overwrite: bool = True) -> SavedBlocks:
    """Register the block types and save the three blocks on the current Prefect server."""
    from bananaflow_prefect.blocks import register_all

    register_all()
    provider = ImageProviderBlock.from_env()
    provider.save(PROVIDER_BLOCK, overwrite=overwrite)
    store_block_from_env(bucket, prefix).save(STORE_BLOCK, overwrite=overwrite)
    limits_block_from_env().save(LIMITS_BLOCK, overwrite=overwrite)
    return SavedBlocks(PROVIDER_BLOCK, STORE_BLOCK, LIMITS_BLOCK)
