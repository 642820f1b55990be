"""Pure pieces of the twin: divergence, fault-profile overlay, the bounded telemetry buffer."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from samantha.twin.fault_profile import FaultProfile
from samantha.twin.router import divergence
from samantha.twin.telemetry_push import TelemetryPusher

probs = st.lists(st.floats(0, 1), min_size=4, max_size=4).filter(lambda v: sum(v) > 0).map(
    lambda v: [x / sum(v) for x in v])


@given(probs, probs)
def test_divergence_is_a_bounded_symmetric_distance(p: list[float], q: list[float]) -> None:
    d = divergence(p, q)
    assert 0 <= d <= 1
    assert abs(d - divergence(q, p)) < 1e-12
    assert divergence(p, p) == 0


@given(probs)
def test_missing_or_malformed_answer_is_maximal_divergence(p: list[float]) -> None:
    assert divergence(p, None) == 1.0
    assert divergence(p, p[:3]) == 1.0


@given(st.integers(1, 50), st.integers(0, 200))
def test_pusher_keeps_the_newest_within_its_bound(bound: int, n: int) -> None:
    pusher = TelemetryPusher(None, max_events=bound)
    for i in range(n):
        pusher.add({"i": i})
    assert len(pusher.buf) == min(n, bound)
    assert pusher.dropped == max(0, n - bound)
    assert [e["i"] for e in pusher.buf] == list(range(max(0, n - bound), n))


def test_overlay_takes_the_degradation_knobs_only() -> None:
    base = FaultProfile(latency_ms=10, error_rate=0.1)
    merged = base.overlay(FaultProfile(error_rate=0.5, nan_rate=0.2))
    assert (merged.latency_ms, merged.error_rate, merged.nan_rate) == (10, 0.5, 0.2)
    assert FaultProfile().is_clean() and merged.active_knobs() == ["latency_ms", "error_rate", "nan_rate"]
