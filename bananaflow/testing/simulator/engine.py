"""One request's life, the same for every route: admit, pick an outcome, wait, answer.

Routes only translate between their wire format and this engine (``ImageCall`` in, a
``Renderer`` to write the answer), so both routes obey the same quotas, script, latency
and stats. Image encoding runs in a worker thread: a 4K PNG must not stall the event loop
while other requests are in flight.
"""
from __future__ import annotations

import asyncio
import base64
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bananaflow.testing.simulator.auth import is_authorized
from bananaflow.testing.simulator.batch_store import BatchStore
from bananaflow.testing.simulator.calls import ImageCall, WireError
from bananaflow.testing.simulator.config import SimulatorConfig
from bananaflow.testing.simulator.defects import defect_for
from bananaflow.testing.simulator.faults.outcomes import choose_outcome
from bananaflow.testing.simulator.faults.quota import SCRIPTED_LIMIT, QuotaGate, QuotaRejection, per_day, per_minute
from bananaflow.testing.simulator.faults.script import Script
from bananaflow.testing.simulator.files import FileStore
from bananaflow.testing.simulator.images import WHITE, render_image
from bananaflow.testing.simulator.judge_engine import JudgeDesk
from bananaflow.testing.simulator.oauth import TokenIssuer
from bananaflow.testing.simulator.stats import RequestRecord, StatsRecorder
from bananaflow.testing.simulator.transport import DropConnection, bad_gateway_page, truncated
from bananaflow.testing.simulator.wire_shapes import EMPTY_SHAPES, ERROR_SHAPES

# Outcomes whose answer carries a final image of the right kind (counted as served).
IMAGE_OUTCOMES = frozenset({"ok", "slow", "wrong_size", "off_white"})
#: A grey studio sweep instead of white: the commonest way a real main image fails QA.
OFF_WHITE = (228, 228, 232)


@dataclass(frozen=True)
class FinalImage:
    """The non-thought image of an answer, already base64-encoded as it goes on the wire."""

    data: bytes
    data_b64: str
    mime_type: str
    width: int
    height: int


class Renderer(Protocol):
    """Writes the engine's verdicts in one route's wire format."""

    def wire_error(self, error: WireError) -> Response: ...

    def bad_key(self) -> Response: ...

    def rejection(self, rejection: QuotaRejection) -> Response: ...

    def server_error(self, status: int) -> Response: ...

    def blocked(self, call: ImageCall, prompt_level: bool) -> Response: ...

    def shaped(self, call: ImageCall, shape: str) -> Response:
        """One of ``wire_shapes.ERROR_SHAPES`` or ``EMPTY_SHAPES``, in this route's format."""
        ...

    def generated(self, call: ImageCall, outcome: str, final: FinalImage | None) -> Response:
        """ok/slow/wrong_size/bad_base64 (with ``final``), no_image/thought_only/text_only."""
        ...


def final_image(call: ImageCall, outcome: str, mime_type: str, defect: str | None = None) -> FinalImage | None:
    """The answer's image for ``outcome``; ``defect`` (a scripted one, ``defects.defect_for``) drawn in."""
    if outcome not in IMAGE_OUTCOMES | {"bad_base64"}:
        return None
    width, height = call.pixels
    if outcome == "wrong_size":  # what a relay that ignores imageSize does, only always wrong
        width, height = width // 2, height // 2
    background = OFF_WHITE if outcome == "off_white" else WHITE
    data = render_image(call.prompt, width, height, mime_type, background, defect)
    encoded = base64.b64encode(data).decode("ascii")
    if outcome == "bad_base64":  # 4k+1 characters never decode, strictly or leniently
        encoded = encoded[: (len(encoded) // 8) * 4 + 1]
    return FinalImage(data, encoded, mime_type, width, height)


class SimulatorEngine:
    """Shared state of one simulator: config, stats, quotas, script, randomness."""

    def __init__(self, config: SimulatorConfig) -> None:
        self._lock = threading.Lock()
        self._config = config
        self.stats = StatsRecorder()
        self.files = FileStore()
        self.batches = BatchStore()
        self.oauth = TokenIssuer()
        self.judge = JudgeDesk(config)
        self._gate = QuotaGate()
        self._rearm()

    @property
    def config(self) -> SimulatorConfig:
        return self._config

    def _rearm(self) -> None:
        with self._lock:
            self._script = Script(self._config.script)
            self._rng = random.Random(self._config.seed)

    def configure(self, **changes: Any) -> SimulatorConfig:
        """Apply knob changes to later requests. A new script or seed starts from the top."""
        new = self._config.with_changes(**changes)
        rearm = new.script != self._config.script or new.seed != self._config.seed
        rearm_judge = new.judge_script != self._config.judge_script or new.seed != self._config.seed
        self._config = new
        if rearm:
            self._rearm()
        if rearm_judge:
            self.judge.rearm(new)
        return new

    def reset(self) -> None:
        """Back to a fresh start: counters, log, quota windows, script and seed, batches."""
        self.stats.reset()
        self._gate.reset()
        self.files.clear()
        self.batches.clear()
        self.oauth.reset()
        self.judge.reset(self._config)
        self._rearm()

    def pick_outcome(self, prompt: str) -> str:
        """The outcome of one request inside a batch: the script, chance and word lists
        apply as for realtime calls; quotas and latency do not (batches have their own)."""
        with self._lock:
            return choose_outcome(self._config, self._script, self._rng, prompt)

    async def handle(
        self,
        request: Request,
        route: str,
        renderer: Renderer,
        parse: Callable[[bytes], ImageCall],
        *,
        model_hint: str | None = None,
        bearer_only: bool = False,
        authorize: Callable[[Request], Response | None] | None = None,
    ) -> Response:
        """A whole request: count it, check the key (or ``authorize``: None to admit, else the
        refusal to send), ``parse`` the body (which raises ``WireError`` for a 400/404), then serve it."""
        record = self.stats.start(route)
        record.model = model_hint
        if authorize is not None:
            refusal = authorize(request)
            if refusal is not None:
                return self._finish(record, "bad_key", refusal)
        elif not is_authorized(request, self._config.api_key, bearer_only=bearer_only):
            return self._finish(record, "bad_key", renderer.bad_key())
        try:
            call = parse(await request.body())
        except WireError as error:
            return self._finish(record, str(error.http_status), renderer.wire_error(error))
        return await self._serve(record, call, renderer)

    def _finish(self, record: RequestRecord, outcome: str, response: Response) -> Response:
        """Close the record with what the client is about to receive."""
        status = None if isinstance(response, DropConnection) else response.status_code
        self.stats.finish(record, outcome, status, image=outcome in IMAGE_OUTCOMES)
        return response

    async def _serve(self, record: RequestRecord, call: ImageCall, renderer: Renderer) -> Response:
        """Admit ``call`` against the quotas, then answer it as the outcome says."""
        record.model, record.aspect_ratio, record.image_size = call.model.id, call.aspect_ratio, call.image_size
        record.reference_images = call.reference_images
        record.set_prompt(call.prompt)
        config = self._config
        rejection = self._gate.admit(config, call.model.id, self.stats.in_flight)
        if rejection is not None:
            return self._finish(record, rejection.outcome, renderer.rejection(rejection))
        self.stats.enter_flight()
        try:
            with self._lock:
                outcome = choose_outcome(config, self._script, self._rng, call.prompt)
                delay = self._rng.uniform(*config.latency_s)
            if outcome == "slow":
                delay += config.slow_seconds
            elif outcome == "ok" and not call.wants_image:
                outcome = "text_only"
            await asyncio.sleep(delay)
            response = await self._answer(config, call, outcome, renderer)
        finally:
            self.stats.leave_flight()
        return self._finish(record, outcome, response)

    async def _answer(self, config: SimulatorConfig, call: ImageCall, outcome: str, renderer: Renderer) -> Response:
        model = call.model.id
        if outcome == "429":
            limit = config.requests_per_minute or SCRIPTED_LIMIT
            return renderer.rejection(per_minute(model, limit, config.script_retry_delay))
        if outcome == "429_day":
            return renderer.rejection(per_day(model, config.requests_per_day or SCRIPTED_LIMIT))
        if outcome in ("500", "503"):
            return renderer.server_error(int(outcome))
        if outcome == "html_502":
            return bad_gateway_page()
        if outcome == "reset":
            return DropConnection()
        if outcome in ("blocked", "prompt_blocked"):
            return renderer.blocked(call, prompt_level=outcome == "prompt_blocked")
        if outcome in ERROR_SHAPES or outcome in EMPTY_SHAPES:
            return renderer.shaped(call, outcome)
        shown = "ok" if outcome == "truncated_json" else outcome
        defect = defect_for(config.defects, call.prompt)
        response = await run_in_threadpool(self._generate, call, shown, renderer, config.image_mime, defect)
        return truncated(response) if outcome == "truncated_json" else response

    @staticmethod
    def _generate(call: ImageCall, outcome: str, renderer: Renderer, mime_type: str, defect: str | None) -> Response:
        return renderer.generated(call, outcome, final_image(call, outcome, mime_type, defect))
