"""A job's budget: which accounts a run draws on, and where they live.

* ``--max-cost`` is what one piece of work may cost: this catalog (its content, not its
  name) made into these images under this bucket and prefix. The run, its shards and the
  retries after it compute the same work key and so draw on one account; a run started by
  a ``catalog.updated`` event for a catalog that did not change shares it too. A changed
  catalog or changed image options are new work with a fresh cap. A later run with a larger
  ``--max-cost`` may spend the difference: that is "more budget".
* ``--daily-budget`` is what the job (bucket + prefix) may spend per UTC day, whatever
  started the run: schedules, events, retries, shards, people.

Both live in Redis when ``BANANAFLOW_REDIS_URL`` is set (the backend the rate limits
already share), else in the run's own bucket (``{prefix}/budgets/``) with conditional
writes: see ``bananaflow.limits.accounts`` for why not the Prefect server.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from bananaflow.errors import ConfigurationError
from bananaflow.limits.accounts import BudgetAccount, ConditionalStore, LocalAccount, RedisAccount, S3Account, usd
from bananaflow.limits.backends import REDIS_NAMESPACE_ENV, REDIS_URL_ENV
from bananaflow.limits.budget import DAILY_BUDGET, MAX_COST, Budget
from bananaflow.secrets import mask_url

__all__ = ["BudgetKeys", "budget_keys", "budget_report_fields", "open_budget", "shared_through", "today"]

#: How long an idle account is kept in Redis: a work's cap for its retries, a day's for the day.
WORK_TTL_S = 90 * 86400
DAY_TTL_S = 3 * 86400


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def today(now: datetime | None = None) -> str:
    """The daily budget's period: the UTC date."""
    return (now or datetime.now(UTC)).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class BudgetKeys:
    """Names of a run's accounts: ``job`` (bucket + prefix), ``work`` (job + catalog content + image options)."""

    bucket: str
    prefix: str
    job: str
    work: str


def budget_keys(bucket: str, prefix: str, catalog_fingerprint: str, work_options: str) -> BudgetKeys:
    """The keys every participant of the same work computes alike (shards, retries, triggered runs)."""
    job = _digest(bucket, prefix.strip("/"))
    return BudgetKeys(bucket, prefix.strip("/"), job, _digest(job, catalog_fingerprint, work_options))


def open_budget(
    keys: BudgetKeys,
    *,
    max_cost_usd: float | None,
    daily_budget_usd: float | None,
    store: ConditionalStore | None,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> Budget | None:
    """The run's ``Budget`` over its shared accounts; None when it has no cap at all.
    Redis when configured, else the store (conditional writes), else this process."""
    if not max_cost_usd and not daily_budget_usd:
        return None
    env = os.environ if environ is None else environ
    url = (env.get(REDIS_URL_ENV) or "").strip()
    day = today(now)
    wanted = [(MAX_COST, max_cost_usd, f"work-{keys.work}", WORK_TTL_S),
              (DAILY_BUDGET, daily_budget_usd, f"day-{day}", DAY_TTL_S)]
    accounts: list[BudgetAccount] = []
    if url:
        import redis

        namespace = (env.get(REDIS_NAMESPACE_ENV) or "").strip() or "bananaflow"
        client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        try:
            client.ping()
        except redis.RedisError as exc:
            raise ConfigurationError(
                f"cannot reach Redis at {mask_url(url)} ({REDIS_URL_ENV}) to keep the budget: {type(exc).__name__}; "
                "start it or unset the variable to keep the budget in the bucket"
            ) from None
        for label, cap, name, ttl in wanted:
            if cap:
                accounts.append(RedisAccount(client, f"{namespace}:budget:{keys.job}:{name}", label, cap, ttl_s=ttl))
        return Budget(accounts=accounts)
    for label, cap, name, _ in wanted:
        if not cap:
            continue
        if store is None:
            accounts.append(LocalAccount(label, cap))
        else:
            base = "/".join(p for p in (keys.prefix, "budgets", name) if p)
            accounts.append(S3Account(store, base, label, cap))
    return Budget(accounts=accounts)


def shared_through(budget: Budget) -> str:
    kinds = {type(a).__name__ for a in budget.accounts}
    return "redis" if "RedisAccount" in kinds else "s3" if "S3Account" in kinds else "process"


def budget_report_fields(budget: Budget) -> dict[str, float | str]:
    """What the summary says of the shared accounts: the work's spend so far and, with a
    daily budget, spent today and left today (every run of the job included)."""
    out: dict[str, float | str] = {"shared_through": shared_through(budget)}
    work = budget.account(MAX_COST)
    if work is not None:
        out["work_spent_usd"] = round(usd(work.state().spent), 4)
    daily = budget.account(DAILY_BUDGET)
    if daily is not None:
        state = daily.state()
        out["daily_budget_usd"] = daily.cap_usd
        out["spent_today_usd"] = round(usd(state.spent), 4)
        out["left_today_usd"] = round(max(0.0, daily.cap_usd - usd(state.spent + state.reserved)), 4)
    return out
