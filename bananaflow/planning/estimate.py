"""``bananaflow estimate``: what a catalog will cost and how long it will take, before any call.

Time is set by the tightest limit: requests per minute, images per minute, the in-flight cap
over the model's latency (a Pro image takes 8-25 s), and the spend cap per rolling 10
minutes; a requests-per-day quota then stretches the job over several days.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from bananaflow.planning.mode import estimate_batch
from bananaflow.planning.work import WorkItem
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
    #: images per variant of the job (empty for a bare count)
    per_variant: dict[str, int] = dataclasses.field(default_factory=dict, compare=False)
    #: the quality gate: judge calls (one per image and per regeneration) at most this much,
    #: and the regenerations expected (``regeneration_share`` of the images, from ``share_source``)
    judge_cost_usd: float = 0.0
    regeneration_share: float = 0.0
    regeneration_cost_usd: float = 0.0
    share_source: str = ""
    judge_model: str = ""

    @property
    def total_cost_usd(self) -> float:
        """Images, expected regenerations and judge calls, at list price."""
        return round(self.cost_standard_usd + self.regeneration_cost_usd + self.judge_cost_usd, 2)

    def with_quality_gate(self, *, judge_model: str, judge_cost_per_call_usd: float, share: float,
                          source: str) -> Estimate:
        """This estimate with the gate on: every image judged, ``share`` of them made again
        (and judged again)."""
        regenerations = self.images * share
        return dataclasses.replace(
            self, judge_model=judge_model, regeneration_share=share, share_source=source,
            regeneration_cost_usd=round(regenerations * (self.cost_standard_usd / self.images if self.images else 0.0), 2),
            judge_cost_usd=round((self.images + regenerations) * judge_cost_per_call_usd, 2),
        )

    def lines(self) -> list[str]:
        hours = self.minutes / 60
        shape = ", ".join(f"{name} {n}" for name, n in self.per_variant.items()) if len(self.per_variant) > 1 else ""
        out = [
            f"images:        {self.images} ({self.model}, {self.image_size})" + (f"; per variant: {shape}" if shape else ""),
            f"cost:          ${self.cost_standard_usd:,.2f} standard, ${self.cost_batch_usd:,.2f} batch (list price)",
            f"throughput:    {self.images_per_min:,.1f} images/min, bound by {self.bound_by}",
            f"time:          {self.minutes:,.1f} min ({hours:,.1f} h) of generation at that rate",
            f"batch mode:    {self.batches} batch(es), results within {self.batch_max_hours:g} h "
            f"at ${self.cost_batch_usd:,.2f} (--mode batch; its own, larger limits)",
        ]
        if self.judge_model:
            out.append(
                f"quality gate:  judge {self.judge_model} at most ${self.judge_cost_usd:,.2f}; "
                f"{self.regeneration_share:.0%} regenerated (${self.regeneration_cost_usd:,.2f}; {self.share_source}); "
                f"total ${self.total_cost_usd:,.2f} (--qa off: ${self.cost_standard_usd:,.2f})"
            )
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



def estimate_items(
    items: Iterable[WorkItem],
    *,
    max_in_flight: int,
    latency_s: float = DEFAULT_LATENCY_S,
    requests_per_minute: float | None = None,
    images_per_minute: float | None = None,
    requests_per_day: int | None = None,
    spend_per_10min_usd: float | None = None,
) -> Estimate:
    """``estimate`` for planned work items (``planning.plan``): every (product x variant)
    image counts, each priced at its own variant's model and size."""
    shapes: Counter[tuple[str, str]] = Counter()
    per_variant: Counter[str] = Counter()
    for item in items:
        shapes[(item.model, item.image_size)] += 1
        per_variant[item.variant] += 1
    at_limits = functools.partial(
        estimate, max_in_flight=max_in_flight, latency_s=latency_s, requests_per_minute=requests_per_minute,
        images_per_minute=images_per_minute, requests_per_day=requests_per_day, spend_per_10min_usd=spend_per_10min_usd,
    )
    if not shapes:
        return at_limits(0, model=_default_model(), image_size="1K")
    parts = [at_limits(n, model=m, image_size=size) for (m, size), n in shapes.most_common()]
    main = parts[0]
    images = sum(p.images for p in parts)
    minutes = sum(p.minutes for p in parts)
    return dataclasses.replace(
        main,
        images=images,
        image_size=", ".join(dict.fromkeys(p.image_size for p in parts)),
        model=", ".join(dict.fromkeys(p.model for p in parts)),
        cost_standard_usd=round(sum(p.cost_standard_usd for p in parts), 2),
        cost_batch_usd=round(sum(p.cost_batch_usd for p in parts), 2),
        batches=sum(p.batches for p in parts),
        minutes=minutes,
        images_per_min=images / minutes if minutes else main.images_per_min,
        days=math.ceil(images / main.requests_per_day) if main.requests_per_day else main.days,
        per_variant=dict(per_variant),
    )


def _default_model() -> str:
    from bananaflow.providers.models import default_model_id

    return default_model_id()
