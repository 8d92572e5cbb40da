"""Prefect Block types: bananaflow's configuration, stored on the Prefect server.

Each block only *wraps* an engine object (``ProviderSettings``, ``ImageStore``,
``RateController``/``RetryPolicy``) so a plain script and a deployed flow configure the
engine the same way. Secrets are ``SecretStr`` fields: the UI and API show them masked.
"""
from bananaflow_prefect.blocks.limits import GenerationLimits
from bananaflow_prefect.blocks.provider import ImageProviderBlock
from bananaflow_prefect.blocks.store import ImageStoreBlock

__all__ = ["GenerationLimits", "ImageProviderBlock", "ImageStoreBlock", "register_all"]


def register_all() -> list[str]:
    """Register the block types with the current Prefect server; returns their slugs."""
    slugs = []
    for block_type in (ImageProviderBlock, ImageStoreBlock, GenerationLimits):
        block_type.register_type_and_schema()
        slugs.append(block_type.get_block_type_slug())
    return slugs
