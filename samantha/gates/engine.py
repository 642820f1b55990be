"""Evaluate a set of gates over the store in one pass.

Planning: the widest request window any gate needs is fetched once; metric
series are fetched once per pass (windowed values for threshold/drift, latest
values for staleness). Each gate then slices its own window from those arrays.
Time is explicit (`now`), so the same engine runs live or on a SimClock backtest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from samantha.core.clock import REAL_CLOCK, Clock
from samantha.gates import evaluate as ev
from samantha.gates.evaluate import EvalContext
from samantha.gates.spec import (
    CompareGate,
    DriftGate,
    GateBase,
    JudgeGate,
    ResourceGate,
    SequentialGate,
    ServerGate,
    StalenessGate,
    ThresholdGate,
)
from samantha.gates.verdict import Verdict
from samantha.gates.windows import MetricCarry, MetricFrame, RequestFrame, TelemetryReader


@dataclass(frozen=True)
class Plan:
    request_start: float | None  # earliest request ts needed (None: no request gate)
    windowed: dict[str, float]  # metric -> earliest start
    latest: dict[str, float]  # metric -> lookback for its latest value


def plan(gates: Sequence[GateBase], ctx: EvalContext) -> Plan:
    now, req = ctx.now, None
    windowed: dict[str, float] = {}
    latest: dict[str, float] = {}

    def need_req(start: float) -> None:
        nonlocal req
        req = start if req is None else min(req, start)

    for g in gates:
        if isinstance(g, StalenessGate):
            latest[g.metric_name] = max(latest.get(g.metric_name, 0.0), g.window)
            continue
        start = now - g.window
        if isinstance(g, DriftGate):
            start = min(start, now - g.offset - g.baseline_len)
        if isinstance(g, SequentialGate):
            start = ev.sequential_start(g, ctx) - g.baseline
        if g.needs_requests():
            need_req(start)
        for m in g.metrics():
            windowed[m] = min(windowed.get(m, start), start)
    return Plan(req, windowed, latest)


class GateEngine:
    def __init__(self, reader: TelemetryReader, clock: Clock = REAL_CLOCK) -> None:
        self.reader = reader
        self.clock = clock
        self.last_fetch_ms = 0.0
        self._seq_caches: dict = {}  # per sequential gate: per-bin evidence of earlier passes
        self._frame: RequestFrame | None = None  # rows of the last pass, extended forward by the next
        self._frame_bundle: tuple[str | None, str | None] = (None, None)
        self._metrics = MetricCarry()
        self._lock = threading.Lock()

    # Rows this close to the newest row already read are read again: the router pushes in
    # batches and the store commits in groups, so the newest seconds may still be filling in.
    REFETCH_S = 5.0

    def _requests(self, start: float, now: float, bundle: str | None, active: str | None = None) -> RequestFrame:
        f = self._frame
        cut = f.end - self.REFETCH_S if f is not None else None
        # Extend only when the kept part is non-empty: a window shorter than REFETCH_S starts after `cut`.
        if (f is not None and cut is not None and (bundle, active) == self._frame_bundle and f.start <= start <= cut
                and f.end <= now and f.is_current()):
            newer = RequestFrame.fetch(self.reader, cut, now, bundle, active)
            frame = f.extended(newer, start, cut)
        else:
            frame = RequestFrame.fetch(self.reader, start, now, bundle, active)
        self._frame, self._frame_bundle = frame, (bundle, active)
        return frame

    def evaluate(self, gates: Sequence[GateBase], now: float | None = None, *,
                 rollout_start: float | None = None, canary_bundle: str | None = None,
                 active_bundle: str | None = None, active_since: float | None = None) -> list[Verdict]:
        """`active_bundle`/`active_since`: what serves on the active slot and since when (a flip), so
        gates over the active role judge only that bundle's requests."""
        ctx = EvalContext(now=self.clock.time() if now is None else float(now),
                          rollout_start=rollout_start, canary_bundle=canary_bundle, caches=self._seq_caches,
                          memo={}, active_bundle=active_bundle, active_since=active_since)
        return self.evaluate_ctx(gates, ctx)

    def evaluate_ctx(self, gates: Sequence[GateBase], ctx: EvalContext) -> list[Verdict]:
        # The daemon's graph and the rollout controller evaluate from different threads; the
        # carried frame and per-bin caches are mutated in place, so passes must not interleave.
        with self._lock:
            return self._evaluate_ctx(gates, ctx)

    def _evaluate_ctx(self, gates: Sequence[GateBase], ctx: EvalContext) -> list[Verdict]:
        p = plan(gates, ctx)
        t0 = time.perf_counter()
        rf = (self._requests(p.request_start, ctx.now, ctx.canary_bundle, ctx.active_bundle)
              if p.request_start is not None else None)
        mf = MetricFrame.fetch(self.reader, p.windowed, p.latest, ctx.now, self._metrics)
        self.last_fetch_ms = (time.perf_counter() - t0) * 1000
        return [evaluate_one(g, rf, mf, ctx) for g in gates]


def evaluate_one(g: GateBase, rf: RequestFrame | None, mf: MetricFrame, ctx: EvalContext) -> Verdict:
    if isinstance(g, ThresholdGate):
        return ev.threshold(g, rf, mf, ctx)
    if isinstance(g, CompareGate):
        return ev.compare(g, rf, ctx)
    if isinstance(g, JudgeGate):
        return ev.judge(g, rf, ctx)
    if isinstance(g, SequentialGate):
        return ev.sequential(g, rf, ctx)
    if isinstance(g, DriftGate):
        return ev.drift(g, rf, mf, ctx)
    if isinstance(g, StalenessGate):
        return ev.staleness(g, mf, ctx)
    if isinstance(g, ResourceGate):
        return ev.resource(g, mf, ctx)
    if isinstance(g, ServerGate):
        return ev.server(g, mf, ctx)
    raise TypeError(f"unknown gate type {type(g).__name__}")
