"""Per-writer row budgets (`WeightedWindowLimiter`): the rule the ingest's rate limit rests on."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samantha.core.clock import SimClock
from samantha.kernel.ratelimit import WeightedWindowLimiter, allows_weighted, sum_in_window


def test_weights_sum_over_the_half_open_window():
    assert sum_in_window([(0.0, 5), (50.0, 3), (130.0, 2)], now=100.0, window_s=60.0) == 5
    assert allows_weighted([(50.0, 3)], 100.0, 60.0, 10, 7) and not allows_weighted([(50.0, 3)], 100.0, 60.0, 10, 8)


def test_a_batch_is_all_or_nothing_and_names_when_it_would_fit():
    clock = SimClock()
    lim = WeightedWindowLimiter(limit=100, window_s=10, clock=clock)
    assert lim.take("router", 60) == 0.0
    clock.advance(4)
    assert lim.take("router", 30) == 0.0
    assert lim.take("router", 20) == pytest.approx(6.0)  # the first 60 rows leave the window at t=10
    assert lim.take("host", 100) == 0.0  # writers are independent
    assert math.isinf(lim.take("router", 101))  # larger than the whole budget: never
    clock.advance(6.01)
    assert lim.take("router", 20) == 0.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 5, allow_nan=False), st.integers(0, 60)), max_size=80),
       st.integers(1, 200), st.floats(0.5, 20, allow_nan=False))
def test_never_more_than_the_limit_in_any_window(takes, limit, window):
    clock = SimClock()
    lim = WeightedWindowLimiter(limit=limit, window_s=window, clock=clock)
    accepted: list[tuple[float, int]] = []
    for gap, n in takes:
        clock.advance(gap)
        wait = lim.take("w", n)
        assert wait >= 0 and (wait == 0) == (n <= limit and sum_in_window(accepted, clock.monotonic(), window) + n <= limit)
        if wait == 0:
            accepted.append((clock.monotonic(), n))
    for t, _ in accepted:  # every window (t - window, t] that ends at an accepted event
        assert sum(n for u, n in accepted if t - window < u <= t) <= limit
