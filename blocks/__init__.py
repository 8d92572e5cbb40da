"""Prefect Block types: bananaflow's configuration, stored on the Prefect server.

Each block only *wraps* an engine object (``ProviderSettings``, ``ImageStore``,
``RateController``/``RetryPolicy``) so a plain script and a deployed flow configure the
engine the same way. Secrets are ``SecretStr`` fields: the UI and API show them masked.
"""
from typing import TypeVar

from prefect.blocks.core import Block

from bananaflow_prefect.blocks.limits import GenerationLimits
from bananaflow_prefect.blocks.provider import ImageProviderBlock
from bananaflow_prefect.blocks.store import ImageStoreBlock

__all__ = ["GenerationLimits", "ImageProviderBlock", "ImageStoreBlock", "load_block", "register_all"]

B = TypeVar("B", bound=Block)


def load_block(block_type: type[B], name: str) -> B:
    """``block_type.load(name)`` from a flow's synchronous code. Prefect dispatches ``load``
    on the caller (a coroutine inside an event loop), so its type is ``B | Coroutine``;
    asking for the synchronous call makes it the block, and says so to the type checker."""
    block = block_type.load(name, _sync=True)  # type: ignore[call-arg]  # async_dispatch's own keyword
    if not isinstance(block, block_type):
        raise TypeError(f"block {name!r} loaded as {type(block).__name__}, not {block_type.__name__}")
    return block


def register_all() -> list[str]:
    """Register the block types with the current Prefect server; returns their slugs."""
    slugs = []
    for block_type in (ImageProviderBlock, ImageStoreBlock, GenerationLimits):
        block_type.register_type_and_schema()
        slugs.append(block_type.get_block_type_slug())
    return slugs
