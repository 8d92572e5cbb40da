"""The batch runner without Prefect, on the simulator and a real ``weed mini``: every step
is safe to repeat after a crash, and results go through the realtime landing path."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bananaflow.batch.api import GeminiBatchAPI
from bananaflow.batch.jsonl import input_file
from bananaflow.batch.ledger import BatchJob, BatchLedger, job_id_for
from bananaflow.batch.runner import BatchRunner, PollPolicy, now_iso
from bananaflow.devstack.local_s3 import LocalS3Server
from bananaflow.generation.lander import ImageLander
from bananaflow.landing.blocked import find_block
from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.storage import ImageStore
from bananaflow.planning.batch_sizing import BatchLimits
from bananaflow.planning.work import WorkItem
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import Secret
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer

pytestmark = pytest.mark.e2e  # a real S3 server (weed mini)

PRO = "gemini-3-pro-image"
KEY = "FAKE-RUNNER-unit-key-0123456789abcdefgh"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3Server]:
    with LocalS3Server(tmp_path_factory.mktemp("s3")) as server, pytest.MonkeyPatch.context() as patch:
        for name, value in server.env().items():
            patch.setenv(name, value)
        yield server


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig(api_key=KEY, batch_turnaround_s=0.2)) as running:
        yield running


def items(prefix: str, n: int) -> list[WorkItem]:
    return [WorkItem(i + 2, f"SKU-{i}", "main", f"a teapot model {prefix}{i}", PRO, "1:1", "1K",
                     f"{prefix}/SKU-{i}/main-{i:08x}", "0" * 64) for i in range(n)]


FAST = PollPolicy(initial_s=0.05, max_interval_s=0.2)


def runner_for(store: ImageStore, run_id: str, api: GeminiBatchAPI, seen: list[ManifestRow],
               poll: PollPolicy, retry_blocked: bool = False) -> BatchRunner:
    return BatchRunner(api, store, run_id=run_id, lander=ImageLander(store, run_id=run_id, mode="batch"),
                       limits=BatchLimits(max_items=2), poll=poll, listeners=[seen.append], retry_blocked=retry_blocked)


def run_batches(sim: SimulatorServer, store: ImageStore, run_id: str, work: list[WorkItem],
                poll: PollPolicy = FAST, retry_blocked: bool = False) -> tuple[list[ManifestRow], list[ManifestRow]]:
    settings = ProviderSettings(kind="gemini", base_url=sim.base_url, api_key=Secret(KEY), auth_style="header", model=PRO)
    seen: list[ManifestRow] = []

    async def go() -> list[ManifestRow]:
        api = GeminiBatchAPI(settings)
        try:
            runner = runner_for(store, run_id, api, seen, poll, retry_blocked)
            plan = await runner.plan(work)
            rows = list(plan.existing)
            jobs = [job for job in plan.resumed if job.batch_name] + [
                (await runner.recover(job)).job for job in plan.resumed if not job.batch_name
            ] + [
                (await runner.submit(group)).job for group in plan.new_groups
            ]
            for job in jobs:
                assert job is not None
                rows += await runner.collect(job, await runner.wait(job))
            return rows
        finally:
            await api.aclose()

    return asyncio.run(go()), seen


def test_results_land_once_and_a_reopened_record_is_resumed_without_a_new_batch(
    s3: LocalS3Server, sim: SimulatorServer
) -> None:
    store = ImageStore("runner", prefix="shop")
    store.ensure_bucket()
    work = items("shop", 3)
    rows, seen = run_batches(sim, store, "run-1", work)
    assert sorted(r.status for r in rows) == ["succeeded"] * 3
    assert len({r.batch_name for r in rows}) == 2  # max_items=2: two batches
    assert {r.mode for r in rows} == {"batch"} and seen == rows
    assert sim.batch_stats()["batches_created"] == 2
    ledger = BatchLedger(store)
    assert ledger.open_jobs() == []

    # A crash after landing but before the record was closed: put one record back.
    closed = store.list_keys(store.key("runs", "_batches", "closed") + "/")
    store.put_bytes(closed[0].replace("/closed/", "/open/"), store.get_bytes(closed[0]), "application/json")
    rows2, _ = run_batches(sim, store, "run-2", work)
    assert sorted(r.status for r in rows2) == ["skipped_exists"] * 3, "one row per item, none landed twice"
    assert sim.batch_stats()["batches_created"] == 2
    assert ledger.open_jobs() == []


def test_failed_batch_defers_and_closes_its_record(s3: LocalS3Server, sim: SimulatorServer) -> None:
    store = ImageStore("runner", prefix="failed")
    store.ensure_bucket()
    sim.configure(batch_outcome="failed")
    rows, _ = run_batches(sim, store, "run-f", items("failed", 2))
    assert [r.status for r in rows] == ["deferred", "deferred"]
    assert {r.error_class for r in rows} == {"BatchNotCompleted"}
    assert "BATCH_STATE_FAILED" in rows[0].error_message and rows[0].batch_name.startswith("batches/")
    assert BatchLedger(store).open_jobs() == []
    sim.configure(batch_outcome="succeeded")
    again, _ = run_batches(sim, store, "run-g", items("failed", 2))
    assert [r.status for r in again] == ["succeeded", "succeeded"], "deferred items are made by the next run"
    assert sim.batch_stats()["batches_created"] == 2


def test_a_batch_still_running_at_the_deadline_is_deferred_and_collected_by_the_next_run(
    s3: LocalS3Server, sim: SimulatorServer
) -> None:
    store = ImageStore("runner", prefix="slow")
    store.ensure_bucket()
    sim.configure(batch_turnaround_s=3600)
    work = items("slow", 2)
    rows, _ = run_batches(sim, store, "run-s", work, PollPolicy(initial_s=0.05, max_interval_s=0.1, give_up_after_s=0.3))
    assert [r.status for r in rows] == ["deferred", "deferred"]
    assert "still BATCH_STATE_" in rows[0].error_message
    (job,) = BatchLedger(store).open_jobs()
    assert job.batch_name == rows[0].batch_name
    sim.configure(batch_turnaround_s=0)
    rows2, _ = run_batches(sim, store, "run-t", work)
    assert [r.status for r in rows2] == ["succeeded", "succeeded"]
    assert {r.batch_name for r in rows2} == {job.batch_name}
    assert sim.batch_stats()["batches_created"] == 1
    assert BatchLedger(store).open_jobs() == []


def test_a_record_left_without_a_batch_name_finds_its_batch_instead_of_creating_another(
    s3: LocalS3Server, sim: SimulatorServer
) -> None:
    """The process died after the create call went out but before its answer was recorded."""
    store = ImageStore("runner", prefix="window")
    store.ensure_bucket()
    work = items("window", 2)
    settings = ProviderSettings(kind="gemini", base_url=sim.base_url, api_key=Secret(KEY), auth_style="header", model=PRO)
    job = BatchJob(job_id_for(work), PRO, work, "run-w", created_at=now_iso())

    async def create_then_crash() -> str:
        api = GeminiBatchAPI(settings)
        try:
            for n in range(3):  # other batches of the project, listed before ours
                await api.create(PRO, await api.upload_jsonl(input_file(items(f"other{n}", 1)), f"x{n}"), f"other-{n}")
            job.file_name = await api.upload_jsonl(input_file(work), job.display_name)
            BatchLedger(store).save(job)
            status = await api.create(PRO, job.file_name, job.display_name)
            for n in range(3, 5):
                await api.create(PRO, await api.upload_jsonl(input_file(items(f"other{n}", 1)), f"x{n}"), f"other-{n}")
            return status.name
        finally:
            await api.aclose()

    name = asyncio.run(create_then_crash())
    assert sim.batch_stats()["batches_created"] == 6
    rows, _ = run_batches(sim, store, "run-w2", work)
    assert [r.status for r in rows] == ["succeeded", "succeeded"]
    assert {r.batch_name for r in rows} == {name}
    assert sim.batch_stats()["batches_created"] == 6


def test_a_prompt_blocked_in_a_batch_is_remembered_and_not_sent_by_the_next_batch_run(
    s3: LocalS3Server, sim: SimulatorServer
) -> None:
    """A blocked answer is billed: batch mode keeps the marker realtime mode keeps, and reads it."""
    store = ImageStore("runner", prefix="blocked")
    store.ensure_bucket()
    sim.configure(blocked_words=("forbidden",))
    work = [WorkItem(2, "SKU-OK", "main", "a teapot on a table", PRO, "1:1", "1K", "blocked/SKU-OK/main-1", "1" * 64),
            WorkItem(3, "SKU-NO", "main", "a forbidden teapot", PRO, "1:1", "1K", "blocked/SKU-NO/main-2", "2" * 64)]
    rows, _ = run_batches(sim, store, "night-1", work)
    assert {r.sku: r.status for r in rows} == {"SKU-OK": "succeeded", "SKU-NO": "blocked"}
    assert find_block(store, "blocked/SKU-NO/main-2").run_id == "night-1"
    sent = sim.stats()["requests_total"]

    rows2, _ = run_batches(sim, store, "night-2", work)
    assert {r.sku: r.status for r in rows2} == {"SKU-OK": "skipped_exists", "SKU-NO": "blocked"}
    blocked = next(r for r in rows2 if r.sku == "SKU-NO")
    assert blocked.attempts == 0 and "night-1" in blocked.error_message and "--retry-blocked" in blocked.error_message
    assert sim.stats()["requests_total"] == sent and sim.batch_stats()["batches_created"] == 1, "nothing sent again"

    sim.configure(blocked_words=())  # the provider's filter changed; --retry-blocked sends it again
    rows3, _ = run_batches(sim, store, "night-3", work, retry_blocked=True)
    assert {r.sku: r.status for r in rows3} == {"SKU-OK": "skipped_exists", "SKU-NO": "succeeded"}
    assert find_block(store, "blocked/SKU-NO/main-2") is None, "the marker goes once the image is made"


def test_a_marker_written_after_the_plan_is_read_before_submitting(s3: LocalS3Server, sim: SimulatorServer) -> None:
    """The plan of a wave can be old by the time its batch is submitted: another run may have
    been refused the same prompt since. Submitting looks again and does not send it."""
    from datetime import UTC, datetime

    from bananaflow.errors import ContentBlocked

    store = ImageStore("runner", prefix="late-block")
    store.ensure_bucket()
    work = items("late-block", 3)
    settings = ProviderSettings(kind="gemini", base_url=sim.base_url, api_key=Secret(KEY), auth_style="header", model=PRO)
    seen: list[ManifestRow] = []

    async def go() -> tuple[list[ManifestRow], int]:
        api = GeminiBatchAPI(settings)
        try:
            runner = BatchRunner(api, store, run_id="night-a", lander=ImageLander(store, run_id="night-a", mode="batch"),
                                 poll=FAST, listeners=[seen.append])
            plan = await runner.plan(work)
            assert [len(g) for g in plan.new_groups] == [3] and plan.existing == []
            other = ImageLander(store, run_id="night-b", mode="batch")  # another run, meanwhile
            await other.remember_block(work[1], ContentBlocked("refused", model=PRO), datetime.now(UTC))
            submission = await runner.submit(plan.new_groups[0])
            assert submission.job is not None
            status = await runner.wait(submission.job)
            return submission.rows + await runner.collect(submission.job, status), len(submission.job.items)
        finally:
            await api.aclose()

    rows, sent = asyncio.run(go())
    assert sent == 2
    assert {r.sku: r.status for r in rows} == {"SKU-0": "succeeded", "SKU-1": "blocked", "SKU-2": "succeeded"}
    assert next(r for r in rows if r.sku == "SKU-1").attempts == 0
    assert sorted(r.sku for r in seen) == ["SKU-0", "SKU-1", "SKU-2"], "each row reported once"


def test_images_kept_for_review_are_not_sent_again_in_batch_mode(s3: LocalS3Server, sim: SimulatorServer) -> None:
    """An image an earlier run left for review (or could not judge) was paid for: a batch run
    with the quality gate on sends nothing for it, as a realtime run does."""
    from bananaflow.landing.review_store import ReviewMarker, review_stem, write_review_marker
    from bananaflow.testing.simulator.images import render_image

    store = ImageStore("runner", prefix="kept")
    store.ensure_bucket()
    work = items("kept", 3)
    for item, status in ((work[1], "needs_review"), (work[2], "unchecked")):
        key = review_stem(item.key_stem, store.prefix) + ".png"
        store.put_image(key, render_image(item.prompt, 64, 64, "image/png"), "image/png")
        write_review_marker(store, item.key_stem, ReviewMarker(status=status, key=key, mime_type="image/png",
                                                               run_id="night-a", model=PRO))
    settings = ProviderSettings(kind="gemini", base_url=sim.base_url, api_key=Secret(KEY), auth_style="header", model=PRO)

    async def go(quality: object) -> tuple[list[str], dict[str, str]]:
        api = GeminiBatchAPI(settings)
        try:
            runner = BatchRunner(api, store, run_id="night-b", lander=ImageLander(store, run_id="night-b", mode="batch"),
                                 poll=FAST, quality=quality)  # type: ignore[arg-type]
            plan = await runner.plan(work)
            return [i.sku for g in plan.new_groups for i in g], {r.sku: r.status for r in plan.existing}
        finally:
            await api.aclose()

    to_send, kept = asyncio.run(go(object()))  # the gate on (screening needs only to know it is)
    assert to_send == ["SKU-0"]
    assert kept == {"SKU-1": "needs_review", "SKU-2": "unchecked"}
    to_send, kept = asyncio.run(go(None))  # --qa off: the gate's markers mean nothing
    assert to_send == ["SKU-0", "SKU-1", "SKU-2"] and kept == {}
