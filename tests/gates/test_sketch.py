"""The latency sketch behind threshold/compare quantile gates (samantha/gates/sketch.py).

Pure logic (numpy in, numbers out), so hypothesis drives it with random samples; the engine-level
tests run it over a real DuckDB store through the gate engine, as the daemon does."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ddsketch import DDSketch
from hypothesis import given, settings
from hypothesis import strategies as st

from samantha.core.clock import SimClock
from samantha.gates.engine import GateEngine
from samantha.gates.sketch import (
    MAPPING,
    MAX_CELLS,
    RELATIVE_ACCURACY,
    SKETCH_MIN_ROWS,
    LatencyBins,
    order_statistic,
)
from samantha.gates.spec import CompareGate, ThresholdGate
from tests.gates.recorded import add_traffic, open_store

A = RELATIVE_ACCURACY
latency = st.one_of(st.just(0.0), st.floats(1e-3, 1e5, allow_nan=False))
samples = st.lists(st.tuples(st.floats(0, 300, allow_nan=False), latency), min_size=1, max_size=400)
quantiles = st.sampled_from([0.5, 0.9, 0.95, 0.99, 0.999, 0.0, 1.0])


def _sorted(rows: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(rows, dtype=float).reshape(-1, 2)
    o = np.argsort(a[:, 0], kind="stable")
    return a[o, 0], a[o, 1]


def _within_bound(est: float, x: np.ndarray, q: float) -> None:
    """The documented bound: within relative accuracy a of numpy's (linear) quantile."""
    exact = float(np.quantile(x, q))
    assert exact * (1 - A) - 1e-9 * exact <= est <= exact * (1 + A) + 1e-9 * exact, (est, exact)


@settings(max_examples=200, deadline=None)
@given(samples, st.floats(-10, 310), st.floats(0, 320), quantiles)
def test_sketch_quantile_agrees_with_numpy_within_the_bound_and_with_ddsketch(rows, start, span, q):
    ts, lat = _sorted(rows)
    end = start + span
    lb = LatencyBins.build(ts, lat, valid_from=-np.inf)
    m = (ts > start) & (ts <= end)
    est = lb.quantile(start, end, q)
    if not m.any():
        assert est is None
        return
    assert int(lb.histogram(start, end).sum()) == int(m.sum())  # counts are exact
    _within_bound(est, lat[m], q)
    # bucketing is the library's: the order statistic at DDSketch's rank reads as DDSketch's own quantile
    ref = DDSketch(A)
    for v in lat[m]:
        ref.add(float(v))
    got = order_statistic(lb.histogram(start, end), lb.kmin, math.floor(q * (int(m.sum()) - 1)))
    want = ref.get_quantile_value(q)
    assert got == pytest.approx(want, rel=1e-9) or want / MAPPING.gamma * (1 - 1e-9) <= got <= \
        want * MAPPING.gamma * (1 + 1e-9)


@settings(max_examples=150, deadline=None)
@given(samples, samples, st.floats(0, 300), st.floats(0, 60), st.floats(0, 40), quantiles)
def test_extending_equals_building_afresh(old, new, keep_from, back, ahead, q):
    """What a live engine does each pass (keep (keep_from, cut], append rows > cut) counts exactly what a
    fresh build over the same rows counts: the carried sketch never drifts from the rows."""
    ts, lat = _sorted(old)
    cut = keep_from + back
    nts, nlat = _sorted(new)
    nts = cut + 1e-3 + nts * (ahead / 300)  # all after cut
    k = (ts > keep_from) & (ts <= cut)
    t2, l2 = np.r_[ts[k], nts], np.r_[lat[k], nlat]
    lb = LatencyBins.build(ts, lat, valid_from=-np.inf)
    grown, fresh = lb.extended(t2, l2, keep_from, cut), LatencyBins.build(t2, l2, keep_from)
    for start, end in ((keep_from, t2[-1] if t2.size else cut), (keep_from + back / 2, cut + ahead / 2)):
        assert np.array_equal(grown.histogram(start, end)[:2], fresh.histogram(start, end)[:2])
        assert int(grown.histogram(start, end).sum()) == int(((t2 > start) & (t2 <= end)).sum())
        assert grown.quantile(start, end, q) == fresh.quantile(start, end, q)


@settings(max_examples=100, deadline=None)
@given(samples, st.lists(st.tuples(st.floats(0.1, 20), st.floats(0.5, 120), st.floats(0.5, 120)), min_size=1,
                         max_size=12), st.floats(20, 200), quantiles)
def test_pass_after_pass_like_a_live_engine(rows, passes, span, q):
    """Frames sliding forward pass by pass (span kept, the last 5 s re-read), windows of changing lengths
    asked each pass (old bins dropped past the longest, rebuilt when a longer one comes): every window's
    count and quantile equal a fresh build's, and the quantile stays within the bound of numpy's."""
    ts, lat = _sorted(rows)
    end = 0.0
    lb = LatencyBins.build(ts[ts <= end], lat[ts <= end], -span)
    for step, w1, w2 in passes:
        prev, end = end, end + step
        keep_from, cut = end - span, min(prev, prev - 5.0 if prev > 5 else prev)
        keep_from = min(keep_from, cut)
        m = (ts > keep_from) & (ts <= end)
        ft, fl = ts[m], lat[m]
        lb = lb.extended(ft, fl, keep_from, cut)
        fresh = LatencyBins.build(ft, fl, keep_from)
        for w in (w1, w2):
            start = max(end - w, keep_from)
            inside = (ft > start) & (ft <= end)
            assert int(lb.histogram(start, end).sum()) == int(inside.sum())
            got = lb.quantile(start, end, q)
            assert got == fresh.quantile(start, end, q)
            if inside.any():
                _within_bound(got, fl[inside], q)


def test_a_value_the_sketch_cannot_bucket_falls_back_to_exact():
    ts = np.arange(1.0, 201.0)
    lat = np.full(ts.size, 10.0)
    lat[50] = np.nan
    lb = LatencyBins.build(ts, lat, 0.0)
    assert lb.quantile(0, 200, 0.99) is None  # the NaN's window: the gate computes the exact quantile
    assert lb.quantile(60, 200, 0.99) == pytest.approx(10.0, rel=A)  # other windows still sketch


def test_a_window_too_long_to_sketch_is_not_sketched():
    ts = np.array([1.0, 1.0 + MAX_CELLS])  # bins x keys beyond the memory bound
    assert LatencyBins.build(ts, np.array([1.0, 1000.0]), 0.0) is None


T0 = 1_800_000_000.0


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    clock = SimClock(T0 + 400)
    s = open_store(tmp_path_factory.mktemp("sketch") / "t.duckdb", clock)
    rng = np.random.default_rng(3)
    add_traffic(s, rng, T0, 400, 150, "active", "v1")
    add_traffic(s, rng, T0 + 100, 300, 150, "standby", "v2", shadow=True, latency_factor=1.3)
    s.flush()
    yield s
    s.close()


def _rows(store, slot: str, start: float, end: float) -> np.ndarray:
    t = store.read_arrow("SELECT latency_ms FROM requests WHERE slot = ? AND ts > ? AND ts <= ?", [slot, start, end])
    return t.column("latency_ms").to_numpy()


def test_quantile_gates_over_a_real_store_live_and_after_a_restart(store):
    """Pass after pass (the carried, incrementally extended sketch) the verdicts' quantiles stay within the
    bound of the exact quantiles of the rows in DuckDB, and equal those of an engine started afresh at that
    moment (a restart rebuilds the sketch from DuckDB)."""
    gates = [ThresholdGate(name="p99", metric="latency_ms", aggregate="p99", value=1e9, window=60, slot="active"),
             ThresholdGate(name="p95-all", metric="latency_ms", aggregate="p95", value=1e9, window=300,
                           include_shadow=True),
             ThresholdGate(name="mean", metric="latency_ms", aggregate="mean", value=1e9, window=60, slot="active"),
             CompareGate(name="cmp", metric="latency_ms", aggregate="p99", max_ratio=1.1, window=120),
             ThresholdGate(name="p99-short", metric="latency_ms", aggregate="p99", value=1e9, window=10,
                           slot="active")]
    live = GateEngine(store)
    for k in range(25):
        now = T0 + 330 + k * 2.7
        got = {v.gate: v for v in live.evaluate(gates, now)}
        fresh = {v.gate: v for v in GateEngine(store).evaluate(gates, now)}
        for name, v in got.items():
            assert v.values == fresh[name].values and v.status == fresh[name].status, name
        _within_bound(got["p99"].values["observed"], _rows(store, "active", now - 60, now), 0.99)
        assert got["p99"].values["quantile_relative_accuracy"] == A
        both = np.r_[_rows(store, "active", now - 300, now), _rows(store, "standby", now - 300, now)]
        _within_bound(got["p95-all"].values["observed"], both, 0.95)
        assert got["p95-all"].samples["n"] == both.size
        exact_mean = float(np.mean(_rows(store, "active", now - 60, now)))
        assert got["mean"].values["observed"] == pytest.approx(exact_mean, rel=1e-12)  # exact: not sketched
        assert "quantile_relative_accuracy" not in got["mean"].values
        _within_bound(got["cmp"].values["canary"], _rows(store, "standby", now - 120, now), 0.99)
        _within_bound(got["cmp"].values["incumbent"], _rows(store, "active", now - 120, now), 0.99)
        assert got["cmp"].status == "fail"  # a 1.3x slower canary, sketched or not
        short = _rows(store, "active", now - 10, now)  # ~1500 rows < SKETCH_MIN_ROWS: a sort is as cheap, exact
        assert short.size < SKETCH_MIN_ROWS <= got["p99"].samples["n"]
        assert got["p99-short"].values["observed"] == float(np.quantile(short, 0.99))
        assert "quantile_relative_accuracy" not in got["p99-short"].values
