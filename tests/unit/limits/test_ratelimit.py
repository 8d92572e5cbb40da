import asyncio
import threading

import pytest

from bananaflow.limits.controller import RateController


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_in_flight_cap_refuses_until_release():
    c = RateController(max_in_flight=2, clock=FakeClock())
    assert c.try_acquire() == 0.0
    assert c.try_acquire() == 0.0
    assert c.try_acquire() > 0
    c.release()
    assert c.try_acquire() == 0.0
    assert c.stats.max_in_flight_seen == 2


def test_rpm_spaces_starts_and_caps_the_sliding_window():
    clock = FakeClock()
    c = RateController(requests_per_minute=60, clock=clock)
    assert c.try_acquire() == 0.0
    c.release()
    # the next start is spaced 1 s later, not bursted
    assert c.try_acquire() == pytest.approx(1.0)
    times = [clock.now]
    for _ in range(400):
        wait = c.try_acquire()
        if wait == 0.0:
            times.append(clock.now)
            c.release()
        else:
            clock.now += wait
    # never more than 60 starts in any 60 s window, and the meter does reach its limit
    assert len(times) >= 120
    assert max(sum(1 for t in times if s <= t < s + 60) for s in times) <= 60
    assert len([t for t in times if t >= times[-1] - 61]) >= 59


def test_cooldown_pauses_everyone_for_the_server_delay():
    clock = FakeClock()
    c = RateController(max_in_flight=10, clock=clock)
    c.cooldown(2.5)
    assert c.try_acquire() == pytest.approx(2.5)
    clock.now += 2.5
    assert c.try_acquire() == 0.0
    assert c.stats.cooldowns == 1


def test_shorter_cooldown_does_not_cut_a_longer_one():
    clock = FakeClock()
    c = RateController(clock=clock)
    c.cooldown(5)
    c.cooldown(1)
    assert c.try_acquire() == pytest.approx(5)


def test_cap_holds_across_threads_and_coroutines():
    c = RateController(max_in_flight=3)
    peak = 0
    current = 0
    lock = threading.Lock()

    async def worker() -> None:
        nonlocal peak, current
        async with c.slot():
            with lock:
                current += 1
                peak = max(peak, current)
            await asyncio.sleep(0.01)
            with lock:
                current -= 1

    def thread_main() -> None:
        async def many() -> None:
            await asyncio.gather(*(worker() for _ in range(10)))

        asyncio.run(many())

    threads = [threading.Thread(target=thread_main) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == 3
    assert c.stats.admitted == 40
    assert c.stats.in_flight == 0


def test_invalid_limits_are_refused():
    with pytest.raises(ValueError):
        RateController(max_in_flight=0)
    with pytest.raises(ValueError):
        RateController(requests_per_minute=0)
