import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samantha.core.clock import SimClock
from samantha.kernel.ratelimit import SlidingWindowLimiter, allows, count_in_window, retry_after


def test_window_is_half_open_and_counts_the_future():
    assert count_in_window([0.0, 40.0, 100.0, 130.0], now=100.0, window_s=60.0) == 2  # 0 and 40 are out, 130 counts
    assert count_in_window([40.0], now=100.0, window_s=60.0) == 0
    assert allows([50.0, 60.0], 100.0, 60.0, 3) and not allows([50.0, 60.0, 70.0], 100.0, 60.0, 3)


def test_retry_after_names_when_the_oldest_blocking_event_leaves():
    assert retry_after([50.0, 60.0, 70.0], 100.0, 60.0, 3) == pytest.approx(10.0)
    assert retry_after([50.0, 60.0, 70.0], 100.0, 60.0, 2) == pytest.approx(20.0)
    assert retry_after([50.0], 100.0, 60.0, 3) == 0.0
    assert allows([50.0, 60.0, 70.0], 110.0, 60.0, 3)


def test_limiter_limits_per_key_and_recovers_as_time_passes():
    clock = SimClock()
    lim = SlidingWindowLimiter(limit=3, window_s=60, clock=clock)
    assert [lim.hit("a") for _ in range(4)] == [True, True, True, False]
    assert lim.hit("b")  # keys are independent
    assert not lim.check("a")
    assert lim.retry_after("a") == pytest.approx(60.0)
    clock.advance(59.9)
    assert not lim.hit("a")
    clock.advance(0.2)
    assert lim.hit("a")
    lim.reset("a")
    assert lim.check("a") and lim.retry_after("a") == 0.0


def test_limiter_memory_is_bounded():
    lim = SlidingWindowLimiter(limit=1, window_s=60, clock=SimClock(), max_keys=100)
    for i in range(1000):
        lim.hit(f"client-{i}")
    assert len(lim._hits) == 100
    assert not lim.hit("client-999")  # recent keys keep their state


def test_bad_parameters_are_refused():
    for kw in ({"limit": 0, "window_s": 1}, {"limit": 1, "window_s": 0}, {"limit": 1, "window_s": 1, "max_keys": 0}):
        with pytest.raises(ValueError):
            SlidingWindowLimiter(clock=SimClock(), **kw)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0, 30), min_size=1, max_size=100), st.integers(1, 5), st.floats(1, 100))
def test_limiter_never_exceeds_its_limit_in_any_window(gaps, limit, window):
    clock = SimClock()
    lim = SlidingWindowLimiter(limit=limit, window_s=window, clock=clock)
    accepted = []
    for gap in gaps:
        clock.advance(gap)
        if lim.hit("k"):
            accepted.append(clock.monotonic())
        else:
            assert lim.retry_after("k") > 0
    for t in accepted:
        assert sum(1 for u in accepted if t - window < u <= t) <= limit
