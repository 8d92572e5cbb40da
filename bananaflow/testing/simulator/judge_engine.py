"""The simulator's judge desk: one judge request's life, the same for every route.

Admit (the judge model's own per-minute limit, ``judge_requests_per_minute``), pick the outcome
(``judge_script``, else ok), wait the configured latency, look at the image (``judge_eye``) and
answer JSON valid for the schema the client sent (``schema_fill``), in the route's wire. Errors
are written by the route's own image renderer, so a judge's 429 or 500 reads exactly like an
image call's. Recorded in ``judge_stats``, apart from the image counters.
"""
from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bananaflow.testing.simulator.auth import is_authorized
from bananaflow.testing.simulator.calls import WireError
from bananaflow.testing.simulator.config import SimulatorConfig
from bananaflow.testing.simulator.faults.quota import SCRIPTED_LIMIT, QuotaGate, QuotaRejection, per_day, per_minute
from bananaflow.testing.simulator.faults.script import Script
from bananaflow.testing.simulator.judge_eye import Findings, inspect
from bananaflow.testing.simulator.judge_stats import JudgeRecord, JudgeStats
from bananaflow.testing.simulator.judge_wire import JudgeCall
from bananaflow.testing.simulator.schema_fill import fill_schema
from bananaflow.testing.simulator.transport import DropConnection, bad_gateway_page

#: Outcomes whose answer carries a verdict the client can read (recorded as such).
_VERDICT_OUTCOMES = frozenset({"ok", "slow", "fenced"})


class ErrorRenderer(Protocol):
    """The part of a route's image renderer a judge answer reuses."""

    def wire_error(self, error: WireError) -> Response: ...

    def bad_key(self) -> Response: ...

    def rejection(self, rejection: QuotaRejection) -> Response: ...

    def server_error(self, status: int) -> Response: ...


Answer = Callable[[JudgeCall, str, Any], Response]


class JudgeDesk:
    """Judge state of one simulator: script cursor, quota window, randomness, stats."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.stats = JudgeStats()
        self._gate = QuotaGate()
        self._lock = threading.Lock()
        self.rearm(config)

    def rearm(self, config: SimulatorConfig) -> None:
        with self._lock:
            self._script = Script(config.judge_script)
            self._rng = random.Random(config.seed + 1)

    def reset(self, config: SimulatorConfig) -> None:
        self.stats.reset()
        self._gate.reset()
        self.rearm(config)

    async def handle(
        self, request: Request, config: SimulatorConfig, route: str, errors: ErrorRenderer,
        parse: Callable[[bytes], JudgeCall], answer: Answer, *, model_hint: str | None = None,
        bearer_only: bool = False, authorize: Callable[[Request], Response | None] | None = None,
    ) -> Response:
        record = self.stats.start(route)
        record.model = model_hint
        refusal = authorize(request) if authorize is not None else (
            None if is_authorized(request, config.api_key, bearer_only=bearer_only) else errors.bad_key())
        if refusal is not None:
            return self._finish(record, "bad_key", refusal)
        try:
            call = parse(await request.body())
        except WireError as error:
            return self._finish(record, str(error.http_status), errors.wire_error(error))
        record.model = call.model.id
        await run_in_threadpool(record.set_request, call.prompt, call.images)
        limits = config.with_changes(requests_per_minute=config.judge_requests_per_minute, requests_per_day=None,
                                     max_in_flight=None, quota_zero_models=())
        rejection = self._gate.admit(limits, call.model.id, self.stats.in_flight)
        if rejection is not None:
            return self._finish(record, rejection.outcome, errors.rejection(rejection))
        self.stats.enter_flight()
        try:
            with self._lock:
                outcome = self._script.next_outcome(call.prompt) or "ok"
                delay = self._rng.uniform(*config.latency_s) + (config.slow_seconds if outcome == "slow" else 0.0)
            await asyncio.sleep(delay)
            response = await self._answer(config, call, outcome, errors, answer, record)
        finally:
            self.stats.leave_flight()
        return self._finish(record, outcome, response)

    async def _answer(self, config: SimulatorConfig, call: JudgeCall, outcome: str, errors: ErrorRenderer,
                      answer: Answer, record: JudgeRecord) -> Response:
        model = call.model.id
        if outcome == "429":
            limit = config.judge_requests_per_minute or SCRIPTED_LIMIT
            return errors.rejection(per_minute(model, limit, config.script_retry_delay))
        if outcome == "429_day":
            return errors.rejection(per_day(model, SCRIPTED_LIMIT))
        if outcome in ("500", "503"):
            return errors.server_error(int(outcome))
        if outcome == "html_502":
            return bad_gateway_page()
        if outcome == "reset":
            return DropConnection()
        findings = (await run_in_threadpool(inspect, call.images[0], call.prompt) if call.images
                    else Findings({"same_product": "no image was sent to judge"}))
        if outcome in _VERDICT_OUTCOMES:
            record.passed = findings.passed
            record.failed_checks = dict(findings.failed)
        if not call.wants_json:
            return answer(call, "plain", findings.summary())
        return answer(call, "ok" if outcome == "slow" else outcome, fill_schema(call.schema, findings))

    def _finish(self, record: JudgeRecord, outcome: str, response: Response) -> Response:
        status = None if isinstance(response, DropConnection) else response.status_code
        self.stats.finish(record, outcome, status)
        return response
