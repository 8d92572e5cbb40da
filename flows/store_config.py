"""Which bucket/prefix a flow works on: an ImageStoreBlock by name, or bucket + prefix."""
from __future__ import annotations

from bananaflow.errors import ConfigurationError
from bananaflow.landing.storage import ImageStore
from bananaflow_prefect.blocks import ImageStoreBlock


def resolve_store(bucket: str | None, prefix: str, store_block: str | None) -> ImageStore:
    """The same rule as the catalog flow: a block wins, else ``bucket`` with the AWS_* env."""
    if store_block:
        return ImageStoreBlock.load(store_block).to_store()
    if bucket:
        return ImageStore(bucket, prefix)
    raise ConfigurationError("no bucket: pass bucket=... or store_block=... (an ImageStoreBlock name)")
