"""Google's quota day: per-day quotas reset at midnight Pacific time.

Here, in the lowest layer, so the 429 classifier and the rate limits share one clock.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

#: Google's daily quotas reset at midnight in this zone.
QUOTA_TZ = ZoneInfo("America/Los_Angeles")


def quota_day(epoch_s: float) -> str:
    """The quota day (``YYYY-MM-DD`` in Pacific time) that ``epoch_s`` falls in."""
    return datetime.fromtimestamp(epoch_s, QUOTA_TZ).date().isoformat()


def next_quota_reset(epoch_s: float | None = None) -> datetime:
    """The next midnight Pacific after ``epoch_s`` (default: now), as an aware datetime."""
    local = datetime.fromtimestamp(time.time() if epoch_s is None else epoch_s, QUOTA_TZ)
    return datetime.combine(local.date() + timedelta(days=1), dtime(0), tzinfo=QUOTA_TZ)
