"""``bananaflow estimate``: what a catalog will cost and how long it will take, before any call.

Time is set by the tightest limit: requests per minute, images per minute, the in-flight cap
over the model's latency (a Pro image takes 8-25 s), and the spend cap per rolling 10
minutes; a requests-per-day quota then stretches the job over several days.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from bananaflow.planning.mode import estimate_batch
from bananaflow.providers.models import get_model

#: Mean seconds per image when the user gives none: the middle of Pro's 8-25 s.
DEFAULT_LATENCY_S = 15.0


@dataclass(frozen=True)
class Estimate:
    images: int
    model: str
    image_size: str
    cost_standard_usd: float
    cost_batch_usd: float
    batches: int
    batch_max_hours: float
    images_per_min: float
    bound_by: str
    minutes: float
    days: int
    requests_per_day: int | None

    def lines(self) -> list[str]:
        hours = self.minutes / 60
        out = [
            f"images:        {self.images} ({self.model}, {self.image_size})",
            f"cost:          ${self.cost_standard_usd:,.2f} standard, ${self.cost_batch_usd:,.2f} batch (list price)",
            f"throughput:    {self.images_per_min:,.1f} images/min, bound by {self.bound_by}",
            f"time:          {self.minutes:,.1f} min ({hours:,.1f} h) of generation at that rate",
            f"batch mode:    {self.batches} batch(es), results within {self.batch_max_hours:g} h "
            f"at ${self.cost_batch_usd:,.2f} (--mode batch; its own, larger limits)",
        ]
        if self.requests_per_day:
            out.append(
                f"daily quota:   {self.requests_per_day:,} requests/day -> {self.days} day(s); "
                "the rest is deferred and picked up by the next day's run"
            )
        return out


def estimate(
    images: int,
    *,
    model: str,
    image_size: str,
    max_in_flight: int,
    requests_per_minute: float | None = None,
    images_per_minute: float | None = None,
    requests_per_day: int | None = None,
    spend_per_10min_usd: float | None = None,
    latency_s: float = DEFAULT_LATENCY_S,
) -> Estimate:
    """Cost at list price and time at the configured limits (no retries assumed)."""
    spec = get_model(model)
    price = spec.list_price(image_size)
    rates = {f"in-flight cap {max_in_flight} x 60 / {latency_s:g} s latency": max_in_flight * 60 / latency_s}
    if requests_per_minute:
        rates[f"{requests_per_minute:g} requests/min"] = requests_per_minute
    if images_per_minute:
        rates[f"{images_per_minute:g} images/min"] = images_per_minute
    if spend_per_10min_usd:
        rates[f"spend cap ${spend_per_10min_usd:g} per 10 min"] = spend_per_10min_usd / price / 10
    bound_by, rate = min(rates.items(), key=lambda kv: kv[1])
    batch = estimate_batch(images, model, image_size)
    minutes = images / rate if images else 0.0
    days = math.ceil(images / requests_per_day) if requests_per_day and images else (1 if images else 0)
    return Estimate(
        images=images,
        model=model,
        image_size=image_size,
        cost_standard_usd=round(images * price, 2),
        cost_batch_usd=round(batch.cost_usd, 2),
        batches=batch.batches,
        batch_max_hours=batch.max_hours,
        images_per_min=rate,
        bound_by=bound_by,
        minutes=minutes,
        days=days,
        requests_per_day=requests_per_day,
    )

