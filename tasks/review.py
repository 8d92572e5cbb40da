"""Human review in Prefect: the run pauses with Prefect's own input form once generation ends.

The form is ``ReviewForm`` (``bananaflow.quality.review_input.ReviewInput`` as a Prefect
``RunInput``), its description the review page (``quality.review_board.describe``). The pause
runs in the flow (Prefect refuses a pause inside a task) and keeps the process: our work store
is a temporary file, so ``suspend_flow_run`` would lose it. A timer resumes the run with an
empty answer when the review time is up, so a timed-out review publishes what passed and the
run completes (Prefect fails a run whose pause expired). While it waits, the images are a
manifest under ``<prefix>/review/waiting/<run>/`` for ``bananaflow review``.
"""
from __future__ import annotations

import contextvars
import threading
import uuid
from collections import Counter
from typing import Any

from prefect import get_run_logger
from prefect.flow_runs import pause_flow_run, resume_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run

from bananaflow.errors import StorageError
from bananaflow.landing.manifest import write_manifest
from bananaflow.landing.review_log import REGENERATE, latest_by_item, load_decisions, save_decisions
from bananaflow.planning.work_store import WorkStore
from bananaflow.quality.review_apply import apply_decisions, clear_for_remake, latest_rows
from bananaflow.quality.review_board import ReviewPlan, decide, describe, verdicts_of, waiting_rows
from bananaflow.quality.review_input import ReviewInput
from bananaflow.quality.review_publish import PublishContext, save_context, waiting_prefix
from bananaflow.quality.review_remake import corrected_item
from bananaflow.reports.agreement import Agreement
from bananaflow_prefect.tasks import run_context
from bananaflow_prefect.tasks.generation import generate_images, item_pump, settle_chunk
from bananaflow_prefect.tasks.run_context import RunContext

#: Seconds between the paused flow's checks for an answer.
PAUSE_POLL_S = 10
#: Reviews whose decisions the agreement figures count.
AGREEMENT_REVIEWS = 20
#: Who decided when the answer names no one: the UI of a server without accounts knows no user.
UI_REVIEWER = "Prefect UI"
TIMEOUT_REVIEWER = "review timeout"


class ReviewForm(ReviewInput, RunInput):
    """The pause form (Prefect shows the fields' titles and descriptions)."""


def review(run: RunContext, items: WorkStore) -> dict[str, Any]:
    """Pause for a person when ``--review`` asks and something waits; then make again what was
    sent back, apply approvals and rejections to the run's rows, and record the decisions.
    Returns the summary's ``review`` entry."""
    config = run.config
    mode = config.options.quality.review or "off"
    waiting = waiting_rows(run.state.rows, mode)
    if not waiting:  # the summary still shows how often people overruled the judge lately
        agreement = _agreement(run)
        if mode == "off":
            return {"mode": mode, "outcome": "off", **agreement} if agreement else {}
        return {"mode": mode, "outcome": "nothing waited", **agreement}
    logger = get_run_logger()
    run_name = str(flow_run.name or config.run_id)
    store, prefix = config.store, config.prefix
    write_manifest(waiting, store, waiting_prefix(prefix, run_name))
    hours = config.options.quality.review_timeout_hours or 24.0
    form = ReviewForm.with_initial_data(description=describe(waiting, store, prefix, run=run_name), approve_all=False)
    logger.info("%d images wait for review: answer the form on this flow run, or `bananaflow review %s`", len(waiting),
                run_name)
    timer = _resume_at_timeout(config.run_id, hours * 3600)
    try:
        answer = pause_flow_run(wait_for_input=form, timeout=int(hours * 3600) + 120, poll_interval=PAUSE_POLL_S,
                                key="review")
    finally:
        timer.cancel()
    for key in store.list_keys(waiting_prefix(prefix, run_name) + "/"):
        store.delete(key)
    if answer.reviewer == TIMEOUT_REVIEWER:
        logger.warning("no review within %.4g h: what passed is published, %d images stay needs_review", hours,
                       len(waiting))
        return {"mode": mode, "outcome": f"timed out after {hours:.4g} h", **_agreement(run)}
    plan = decide(waiting, answer, run=run_name, who=answer.reviewer.strip() or UI_REVIEWER)
    for problem in plan.problems:
        logger.warning("review: %s", problem)
    _remake(run, items, plan)
    run.state.replace_rows(apply_decisions(latest_rows(run.state.rows), plan.decisions, store, prefix))
    uri = save_decisions(store, prefix, run_name, plan.decisions)
    counts = Counter(d.action for d in plan.decisions)
    logger.info("review by %s: %s", plan.decisions[0].who if plan.decisions else "-", dict(counts) or "nothing decided")
    return {"mode": mode, "outcome": f"decided by {answer.reviewer.strip() or UI_REVIEWER}", "decisions": dict(counts),
            "decisions_uri": uri or "", "undecided": len(plan.undecided), "problems": list(plan.problems),
            **_agreement(run)}


def _resume_at_timeout(flow_run_id: str, seconds: float) -> threading.Timer:
    """Resume the run with an empty answer when the review time is up (Prefect's settings live
    in a context variable: the timer thread runs in a copy of this one)."""
    context = contextvars.copy_context()

    def resume() -> None:
        try:
            resume_flow_run(uuid.UUID(flow_run_id), run_input=ReviewInput(reviewer=TIMEOUT_REVIEWER).model_dump())
        except Exception as exc:  # a person answered at the same moment: theirs stands
            get_run_logger().debug("timeout resume not needed: %s", exc)

    timer = threading.Timer(max(seconds, 1.0), lambda: context.run(resume))
    timer.daemon = True
    timer.start()
    return timer


def _remake(run: RunContext, items: WorkStore, plan: ReviewPlan) -> None:
    """Make again what the reviewer sent back, the note as a correction; the new rows join
    the run's rows (the last row of an item is its final one)."""
    wanted = {d.item: d for d in plan.by_action(REGENERATE)}
    if not wanted:
        return
    rows = {(r.sku, r.variant): r for r in plan.rows if (r.sku, r.variant) in wanted}
    for row in rows.values():
        clear_for_remake(run.config.store, row, run.config.prefix)
    remade = [corrected_item(item, wanted[(item.sku, item.variant)].note, verdicts_of(rows[(item.sku, item.variant)]))
              for item in items if (item.sku, item.variant) in wanted]
    run_context.register(run)
    try:
        with run.guard.hold(), item_pump(run):
            settle_chunk(remade, generate_images.submit(run_id=run.run_id, items=remade, label="review"), run)
    finally:
        run_context.release(run.run_id)


def _agreement(run: RunContext) -> dict[str, Any]:
    """The agreement figures of the last reviews (none when nobody decided yet, or S3 refused:
    they are a report, never a reason to fail the run)."""
    try:
        decisions = load_decisions(run.config.store, run.config.prefix, reviews=AGREEMENT_REVIEWS)
    except StorageError as exc:
        get_run_logger().warning("no review agreement figures: %s", exc.message)
        return {}
    if not decisions:
        return {}
    return {"agreement": Agreement.of(decisions).to_dict(), "items_decided": len(latest_by_item(decisions))}



def keep_review_context(run: RunContext, run_prefix: str) -> None:
    """Beside the manifest of a run that leaves images waiting (or was reviewed): what
    ``bananaflow review`` needs to publish its approvals after the run has finished."""
    config = run.config
    if (config.options.quality.review or "off") == "off" and not waiting_rows(run.state.rows, "flagged"):
        return
    spec = config.job.spec.writeback
    save_context(config.store, run_prefix, PublishContext(
        catalog=config.catalog, variants=tuple(v.name for v in config.job.variants),
        writeback=spec.model_dump(mode="json"), encoding=config.options.reading.encoding,
    ))
