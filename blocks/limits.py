"""How hard to push the provider: ``LimitSettings`` stored as a Prefect block."""
from __future__ import annotations

from prefect.blocks.core import Block

from bananaflow.limits.settings import LimitSettings


class GenerationLimits(LimitSettings, Block):
    """The project's limits as AI Studio shows them, and how long to keep retrying.

    Its fields are ``bananaflow.limits.settings.LimitSettings``: the one definition the CLI,
    the flow's ``limits`` parameter and the rate controllers share.
    """

    _block_type_name = "Bananaflow Generation Limits"
    _block_type_slug = "bananaflow-generation-limits"
    _description = "In-flight cap, requests/images per minute, requests per day, spend cap, retries."
