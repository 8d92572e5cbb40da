"""How hard to push the provider: ``LimitSettings`` stored as a Prefect block."""
from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field

from bananaflow.limits.settings import LimitSettings


class GenerationLimits(LimitSettings, Block):
    """The project's limits as AI Studio shows them, and how long to keep retrying.

    Its fields are ``bananaflow.limits.settings.LimitSettings``: the one definition the CLI,
    the flow's ``limits`` parameter and the rate controllers share.
    """

    _block_type_name = "Bananaflow Generation Limits"
    _block_type_slug = "bananaflow-generation-limits"
    _description = "In-flight cap, requests/images per minute, requests per day, spend cap, retries."

    daily_budget_usd: float | None = Field(
        None, gt=0, description="What the job (bucket + prefix) may spend per UTC day across all its runs: scheduled, "
        "triggered, retries, shards. A run's --daily-budget wins; empty: no daily cap."
    )
