"""Adaptive mode: an unmetered start that counts what the provider took when it first says
no, then AIMD. Driven by an injectable clock; the assertions are about behaviour, not timing."""
import json

import pytest

from bananaflow.limits.adaptive import AdaptiveLimit
from bananaflow.limits.admission import Admission, Route
from bananaflow.limits.controller import RateController
from bananaflow.limits.settings import LimitSettings


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def send(a: AdaptiveLimit, clock: Clock, n: int, every: float = 0.0, *, succeed: bool = True) -> None:
    for _ in range(n):
        a.on_sent()
        if succeed:
            a.on_success()
        clock.now += every


def watched_a_minute(clock: Clock) -> AdaptiveLimit:
    """An unmetered limit that has been running for over a minute (one request, long ago)."""
    a = AdaptiveLimit(clock=clock)
    send(a, clock, 1)
    clock.now += 61.0
    return a


def test_without_a_start_rate_nothing_is_metered_until_the_provider_pushes_back():
    clock = Clock()
    a = AdaptiveLimit(clock=clock)
    send(a, clock, 500, every=0.01)
    assert a.limit is None and not a.learned and a.cuts == 0


def test_the_first_429_sets_the_limit_to_what_the_provider_took_in_the_last_minute():
    clock = Clock()
    a = watched_a_minute(clock)
    send(a, clock, 200, every=0.1)  # 200 requests in the last 20 s (the one a minute ago has aged out)
    a.on_throttle("429")
    assert a.learned and a.cuts == 1
    assert a.limit == pytest.approx(199)  # the 429'd request was not taken


def test_429s_to_requests_already_in_flight_refine_the_count_without_another_cut():
    clock = Clock()
    a = watched_a_minute(clock)
    send(a, clock, 120, every=0.1, succeed=False)
    a.on_throttle("429")
    clock.now += 0.05
    for _ in range(3):  # they were sent before the provider said no, and counted as taken
        a.on_throttle("429")
    assert a.limit == pytest.approx(116) and a.cuts == 1


def test_a_quota_used_up_early_is_counted_exactly_by_the_next_minutes_429():
    clock = Clock()
    a = AdaptiveLimit(clock=clock)
    send(a, clock, 100, every=0.1)  # 100 requests in the first 10 s, then a 429
    a.on_throttle("429")
    first = a.limit
    assert first == pytest.approx(99 * 6)  # the rate over the 10 s watched, not 99/min
    clock.now += 50.0
    send(a, clock, 40, every=0.25)  # the next minute: the provider took 40 more, then says no
    a.on_throttle("429")
    assert a.limit == pytest.approx(39) and a.cuts == 2


def test_a_429_a_moment_into_a_run_does_not_make_it_crawl():
    clock = Clock()
    a = AdaptiveLimit(clock=clock)
    send(a, clock, 20, succeed=False)  # the in-flight cap's first wave
    clock.now += 0.3
    a.on_throttle("429")
    assert a.limit >= 19 * 60  # the rate that was going through, not 19 requests a minute


def test_after_a_cut_the_found_rate_is_held_for_a_minutes_worth_of_answers_then_probed_slowly():
    clock = Clock()
    a = watched_a_minute(clock)
    send(a, clock, 301, every=0.1, succeed=False)
    a.on_throttle("429")
    found = a.limit
    assert found == pytest.approx(300)
    send(a, clock, 300, every=0.2)  # a minute's worth of answers at the found rate: held
    assert a.limit == found
    send(a, clock, 300, every=0.2)  # then probed, about 1% per minute's worth
    assert found < a.limit <= found * 1.011


def test_a_later_429_cuts_multiplicatively_and_never_above_what_was_taken():
    clock = Clock()
    a = watched_a_minute(clock)
    send(a, clock, 301, every=0.1, succeed=False)
    a.on_throttle("429")
    before = a.limit
    clock.now += 61.0
    send(a, clock, 290, every=0.2)  # paced at the limit for a minute
    a.on_throttle("429")
    assert a.limit == pytest.approx(min(before * 0.85, 289))
    assert a.cuts == 2


def test_overload_while_unmetered_backs_off_from_the_rate_that_was_sent():
    clock = Clock()
    a = AdaptiveLimit(hold_s=0.0, clock=clock)
    send(a, clock, 100, every=0.1)  # 600/min for 10 s
    a.on_throttle("503")  # one 503 is the model's bad luck
    assert a.limit is None
    for _ in range(9):  # a fifth of recent answers is our rate
        a.on_throttle("503")
    assert a.limit == pytest.approx(600 * 0.85) and a.cuts == 1


def test_a_limit_learned_by_an_earlier_run_is_used_as_found():
    clock = Clock()
    a = AdaptiveLimit.resume(300.0, clock=clock)
    assert a.limit == 300.0 and not a.learned  # nothing pushed back in this run yet
    send(a, clock, 300, every=0.2)
    assert a.limit == 300.0  # no fresh search: held, then probed slowly
    send(a, clock, 300, every=0.2)
    assert 300.0 < a.limit <= 303.1


def test_a_start_rate_slow_starts_from_there():
    a = AdaptiveLimit(60.0, clock=Clock())
    for _ in range(10):
        a.on_success()
    assert a.limit == pytest.approx(80.0) and not a.learned


def test_the_controller_sends_unmetered_but_counts_the_minute_once_a_limit_is_learned():
    clock = Clock()
    adaptive = AdaptiveLimit(clock=clock)
    c = RateController(max_in_flight=100, adaptive=adaptive, clock=clock)
    c.try_acquire()
    c.record_sent()
    c.release()
    clock.now += 61.0
    for _ in range(30):  # all at once: only the in-flight cap applies
        assert c.try_acquire() == 0.0
        c.record_sent()
    for _ in range(30):
        c.release()
    c.record_throttle("429")
    assert adaptive.limit == pytest.approx(29)
    # the 30 requests just sent count against the 29 learned: wait for the minute to pass
    assert c.try_acquire() > 50.0


def test_admission_starts_unmetered_from_a_given_rate_or_where_an_earlier_run_ended(tmp_path):
    route = Route("gemini:sim", "gemini-3-pro-image")
    state = tmp_path / "learned.json"
    fresh = Admission(LimitSettings(adaptive=True), learned_limits_file=str(state))
    assert fresh.controller(route).adaptive.limit is None
    assert fresh.learned_limits() == {}  # nothing learned, nothing reported
    fresh.keep_learned_limits()
    assert not state.exists()

    given = Admission(LimitSettings(adaptive=True, requests_per_minute=90))
    assert given.controller(route).adaptive.limit == 90.0

    state.write_text(json.dumps({route.scope: 420.0}))
    resumed = Admission(LimitSettings(adaptive=True, requests_per_minute=90), learned_limits_file=str(state))
    adaptive = resumed.controller(route).adaptive
    assert adaptive.limit == 420.0 and not adaptive.learned
    assert resumed.learned_limits() == {route.scope: 420.0}
