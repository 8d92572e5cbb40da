"""``bananaflow review [RUN]``: what a paused or finished run left for a person, and deciding it.

Without decision flags it lists the waiting images (the newest paused run's when RUN is left
out). On a paused run the decisions resume it with that answer (Prefect's ``resume_flow_run``
with ``run_input``: the flow makes again what was sent back and publishes). On a finished run
the approved images are published as a new manifest and write-back beside the run's
(``quality.review_publish``). The run's bucket comes from its own parameters (bucket, store
block). Prefect is imported lazily, as in every command that talks to a server.
"""
from __future__ import annotations

import argparse
import getpass
import socket
import uuid
from typing import Any

from bananaflow.cli.arguments import add_model_flags, model_from_args
from bananaflow.errors import ConfigurationError
from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.review_log import REGENERATE, save_decisions
from bananaflow.landing.run_history import load_run_manifest
from bananaflow.landing.storage import ImageStore
from bananaflow.quality.review_board import ReviewPlan, decide, judge_verdict, waiting_rows
from bananaflow.quality.review_input import ReviewCommand

__all__ = ["add_review_command", "cmd_review", "shell_reviewer"]

FLOW_NAME = "catalog-to-images"
GROUP = "decisions"


def add_review_command(sub: argparse._SubParsersAction) -> None:
    review = sub.add_parser("review", help="list, approve, reject or send back the images a run left for review")
    review.add_argument("run", nargs="?", help="flow run name or id (default: the newest paused run)")
    add_model_flags(review, ReviewCommand, GROUP)


def shell_reviewer() -> str:
    """Who decides from a terminal: what the shell knows (user@host)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _plain(value: object, limit: int = 200) -> str:
    """A catalog value for the terminal: one line, no control characters (no escape sequences)."""
    text = "".join(c if c.isprintable() else " " for c in str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _find_run(client: Any, name: str | None) -> Any:
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterName,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    if name is None:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))),
            sort=FlowRunSort.START_TIME_DESC, limit=1,
        )
        if not runs:
            raise ConfigurationError("bananaflow review: no paused run; name a finished one: bananaflow review RUN")
        return runs[0]
    try:
        return client.read_flow_run(uuid.UUID(name))
    except ValueError:
        pass
    runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])), limit=1)
    if not runs:
        raise ConfigurationError(f"bananaflow review: no flow run named {name!r} on this Prefect server")
    return runs[0]


def _store_of(flow_run: Any) -> ImageStore:
    """The bucket the run wrote to, from its own parameters (bucket/prefix or store block)."""
    from bananaflow.options import RunOptions
    from bananaflow_prefect.flows.configure import resolve_store

    params = {k: v for k, v in (flow_run.parameters or {}).items() if k in RunOptions.model_fields}
    try:
        store, _ = resolve_store(RunOptions.model_validate(params))
    except ValueError as exc:  # a block the server no longer has
        raise ConfigurationError(f"bananaflow review: {exc}") from None
    return store


def _list(rows: list[ManifestRow], store: ImageStore, run: str, state: str) -> None:
    print(f"{run} ({state}): {len(rows)} image{'s' if len(rows) != 1 else ''} wait for review")
    for row in rows:
        verdict = judge_verdict(row)
        reasons = "not checked" if verdict is None else "passed" if verdict.passed else "; ".join(verdict.reasons) or "failed"
        print(f"  {_plain(row.sku)}  {_plain(row.variant)}  {_plain(reasons, 300)}")
        print(f"    {store.presigned_url(row.key, 24 * 3600)}")


def _checked(plan: ReviewPlan) -> ReviewPlan:
    if plan.problems:
        raise ConfigurationError("bananaflow review: " + "; ".join(plan.problems))
    return plan


def cmd_review(args: argparse.Namespace) -> int:
    command = model_from_args(args, ReviewCommand, GROUP, reviewer=shell_reviewer())
    answer = command.to_input()
    from prefect.client.orchestration import get_client
    from prefect.flow_runs import resume_flow_run

    with get_client(sync_client=True) as client:
        flow_run = _find_run(client, args.run)
    store = _store_of(flow_run)
    state = flow_run.state.name if flow_run.state else "unknown"
    if flow_run.state is not None and flow_run.state.is_paused():
        from bananaflow.quality.review_publish import waiting_prefix

        waiting = load_run_manifest(store, waiting_prefix(store.prefix, flow_run.name) + "/manifest.parquet").rows
        _list(waiting, store, flow_run.name, state)
        if not command.decides:
            return 0
        _checked(decide(waiting, answer, run=flow_run.name, who=answer.reviewer))
        resume_flow_run(flow_run.id, run_input=answer.model_dump())
        print(f"resumed {flow_run.name} with the decisions of {answer.reviewer}")
        return 0
    from bananaflow.quality.review_publish import find_run_manifest, publish_review

    manifest = find_run_manifest(store, flow_run.name)
    if manifest is None:
        raise ConfigurationError(f"bananaflow review: run {flow_run.name} ({state}) has no manifest in s3://{store.bucket}")
    waiting = waiting_rows(manifest.rows, "flagged")
    _list(waiting, store, flow_run.name, state)
    if not command.decides:
        return 0
    plan = _checked(decide(waiting, answer, run=flow_run.name, who=answer.reviewer))
    remake = plan.by_action(REGENERATE)
    published = publish_review(store, flow_run.name, manifest.rows, plan) if len(remake) < len(plan.decisions) else None
    if published is None:
        save_decisions(store, store.prefix, flow_run.name, plan.decisions)
    else:
        print(f"published {published.approved} approved, {published.rejected} rejected: manifest "
              f"{published.manifest.get('parquet', '')}" + (f", write-back {published.writeback}" if published.writeback else ""))
    if remake:
        print(f"{len(remake)} image{'s' if len(remake) != 1 else ''} will be made again by the next run, with the note")
    return 0
