"""Pure pieces of the twin: divergence, shadow latency, fault-profile overlay, the bounded telemetry buffer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from samantha.cube.fault_profile import FaultProfile
from samantha.twin.router import PATH_FAULT_FLOOR_MS, Outcome, divergence, shadow_latency_ms
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


def _outcome(e2e: float, transport: float, service: float | None) -> Outcome:
    return Outcome(200, b"", e2e, [1.0], "b", service_ms=service, transport_ms=transport)


@given(st.floats(0.05, 50), st.floats(0, 5), st.floats(0, 5), st.floats(0, PATH_FAULT_FLOOR_MS - 0.01),
       st.floats(0.05, 50))
def test_shadow_latency_is_the_standbys_service_on_the_live_path(service: float, live_ovh: float, late: float,
                                                                 queued: float, active_service: float) -> None:
    """Read late (`late`) or queued at its slot (`queued`, under the floor): neither counts against the standby."""
    live = _outcome(active_service + live_ovh + 0.5, active_service + live_ovh, active_service)
    mirrored = _outcome(service + live_ovh + queued + late + 3.0, service + live_ovh + queued, service)
    assert shadow_latency_ms(mirrored, live) == pytest.approx(service + live_ovh + 0.5)


@given(st.floats(0.05, 50), st.floats(0, 5), st.floats(PATH_FAULT_FLOOR_MS + 0.01, 5000))
def test_a_fault_on_the_standbys_path_counts_in_full(service: float, live_ovh: float, proxy_delay: float) -> None:
    live = _outcome(1.0 + live_ovh, 1.0 + live_ovh, 1.0)
    mirrored = _outcome(service + live_ovh + proxy_delay + 2.0, service + live_ovh + proxy_delay, service)
    assert shadow_latency_ms(mirrored, live) == pytest.approx(service + live_ovh + proxy_delay)


def test_without_a_reported_service_time_the_measured_latency_stands() -> None:
    live = _outcome(1.0, 0.8, None)
    mirrored = _outcome(7.0, 6.0, None)
    assert shadow_latency_ms(mirrored, live) == 7.0
    assert shadow_latency_ms(_outcome(7.0, 6.0, 2.0), live) == 7.0
