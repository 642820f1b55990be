"""Samantha's own Prometheus metrics: one registry, small functions the other parts call.

Two kinds of series:
- pushed: parts call `gate_evaluated(s)`, `decision(kind)`, `action(kind, status)`,
  `llm_call(task, s, outcome)`, `outbox_depth(n)`, `synced(ts)` as things happen;
- pulled at scrape time from sources the daemon binds (`bind_store`, `bind_cube`,
  `bind_actions`), so telemetry and the Cube need no instrumentation of their own and a
  scrape always shows the current state.

`render()` is the text exposition format served on `/metrics`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("samantha.api.metrics")
disable_created_metrics()  # *_created series: noise for a scrape of one long-lived process
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_LLM_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


class _Pulled(Collector):
    """Series read at scrape time from bound sources; a failing source is skipped, never fatal."""

    def __init__(self) -> None:
        self.store_stats: Callable[[], dict[str, Any]] | None = None
        self.cube_state: Callable[[], dict[str, Any] | None] | None = None
        self.action_counts: Callable[[], list[tuple[str, str, int]]] | None = None
        self.decision_counts: Callable[[], list[tuple[str, int]]] | None = None

    def describe(self) -> list[Any]:
        return []  # dynamic: nothing to check at registration

    def collect(self) -> Iterator[Any]:
        for name, fn in (("store", self._store), ("cube", self._cube), ("actions", self._actions),
                         ("decisions", self._decisions)):
            try:
                yield from fn()
            except Exception as e:  # a scrape must not fail because one source did
                log.warning("metrics source %s failed: %s", name, e)

    def _store(self) -> Iterator[Any]:
        if self.store_stats is None:
            return
        s = self.store_stats()
        acc = CounterMetricFamily("samantha_ingest_accepted_rows", "telemetry rows accepted, by table",
                                  labels=["table"])
        for table, n in sorted((s.get("accepted_by_table") or {}).items()):
            acc.add_metric([table], n)
        yield acc
        rej = CounterMetricFamily("samantha_ingest_rejected_rows", "telemetry rows rejected, by reason",
                                  labels=["reason"])
        for reason, n in sorted((s.get("rejected_by_reason") or {}).items()):
            rej.add_metric([reason], n)
        yield rej
        yield CounterMetricFamily("samantha_ingest_shed_rows", "rows shed by the write buffer under overload",
                                  value=s.get("shed", 0))
        folds = CounterMetricFamily("samantha_cardinality_folds", "label sets folded into __overflow__, by metric",
                                    labels=["metric"])
        for metric, n in sorted((s.get("folds_by_metric") or {}).items()):
            folds.add_metric([metric], n)
        yield folds
        yield GaugeMetricFamily("samantha_series", "distinct series in the store", value=s.get("series", 0))
        yield GaugeMetricFamily("samantha_ingest_buffer_rows", "rows waiting for group commit",
                                value=s.get("buffer_rows", 0))
        yield CounterMetricFamily("samantha_store_commits", "group commits", value=s.get("commits", 0))

    def _cube(self) -> Iterator[Any]:
        if self.cube_state is None:
            return
        st = self.cube_state()
        up = GaugeMetricFamily("samantha_cube_up", "1 when the Cube's control API answered the last cycle")
        up.add_metric([], 1 if st else 0)
        yield up
        if not st:
            return
        healthy = GaugeMetricFamily("samantha_cube_slot_healthy", "slot health (1 healthy)", labels=["slot", "role"])
        weight = GaugeMetricFamily("samantha_cube_slot_weight_percent", "traffic share per slot role",
                                   labels=["role"])
        info = GaugeMetricFamily("samantha_cube_slot_bundle_info", "bundle served by each slot (value 1)",
                                 labels=["slot", "role", "bundle", "version", "bundle_id"])
        for s in st.get("slots") or []:
            healthy.add_metric([str(s.get("name")), str(s.get("role"))], 1 if s.get("healthy") else 0)
            info.add_metric([str(s.get("name")), str(s.get("role")), str(s.get("bundle_name")),
                             str(s.get("bundle_version")), str(s.get("bundle_id"))[:16]], 1)
        for role, w in sorted((st.get("weights") or {}).items()):
            weight.add_metric([role], float(w))
        yield healthy
        yield weight
        yield info
        safe = GaugeMetricFamily("samantha_cube_safe_mode", "1 while the Cube is in safe mode")
        safe.add_metric([], 1 if st.get("safe_mode") else 0)
        yield safe

    def _actions(self) -> Iterator[Any]:
        if self.action_counts is None:
            return
        g = GaugeMetricFamily("samantha_actions", "recorded actions by kind and current status",
                              labels=["kind", "status"])
        for kind, status, n in self.action_counts():
            g.add_metric([kind, status], n)
        yield g

    def _decisions(self) -> Iterator[Any]:
        if self.decision_counts is None:
            return
        c = CounterMetricFamily("samantha_audit_records", "signed audit records (decisions) by kind",
                                labels=["kind"])
        for kind, n in self.decision_counts():
            c.add_metric([kind], n)
        yield c


class SamanthaMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.gate_eval = Histogram("samantha_gate_evaluation_seconds", "time to evaluate all gates once",
                                   buckets=_LATENCY_BUCKETS, registry=r)
        self.cycle = Histogram("samantha_cycle_seconds", "one steady-state cycle, observe to record",
                               buckets=_LATENCY_BUCKETS, registry=r)
        self.decisions = Counter("samantha_decisions", "decisions taken by the daemon", ["kind", "outcome"],
                                 registry=r)
        self.actions = Counter("samantha_action_transitions", "action state transitions", ["kind", "status"],
                               registry=r)
        self.llm = Histogram("samantha_llm_call_seconds", "LLM call latency by task and outcome",
                             ["task", "outcome"], buckets=_LLM_BUCKETS, registry=r)
        self.outbox = Gauge("samantha_outbox_depth", "uplink batches waiting for upload", registry=r)
        self.last_sync = Gauge("samantha_last_sync_timestamp_seconds", "wall time of the last successful sync "
                               "(0: never)", registry=r)
        self.logins = Counter("samantha_api_logins", "API/console authentication attempts", ["result"], registry=r)
        self.info = Gauge("samantha_build_info", "version of the running daemon", ["version"], registry=r)
        self.last_sync_ts = 0.0
        self.pulled = _Pulled()
        r.register(self.pulled)
        r.register(_SinceSync(self))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _SinceSync(Collector):
    """`time since sync` computed at scrape time, so it grows while the link is down."""

    def __init__(self, m: SamanthaMetrics) -> None:
        self.m = m

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        last = self.m.last_sync_ts
        g = GaugeMetricFamily("samantha_seconds_since_sync", "seconds since the last successful sync "
                              "(-1: never synced)")
        g.add_metric([], max(0.0, time.time() - last) if last > 0 else -1.0)
        yield g


METRICS = SamanthaMetrics()


# ---- the small functions other parts call ----
def gate_evaluated(seconds: float) -> None:
    METRICS.gate_eval.observe(max(0.0, seconds))


def cycle_done(seconds: float) -> None:
    METRICS.cycle.observe(max(0.0, seconds))


def decision(kind: str, outcome: str = "taken") -> None:
    METRICS.decisions.labels(kind=kind, outcome=outcome).inc()


def action(kind: str, status: str) -> None:
    METRICS.actions.labels(kind=kind, status=status).inc()


def llm_call(task: str, seconds: float, outcome: str) -> None:
    METRICS.llm.labels(task=task, outcome=outcome).observe(max(0.0, seconds))


def llm_sink(record: Any) -> None:
    """An `LlmEngine` sink: every call record becomes one latency observation."""
    llm_call(str(record.task), float(record.latency_s), str(record.outcome))


def outbox_depth(n: int) -> None:
    METRICS.outbox.set(n)


def synced(ts: float) -> None:
    METRICS.last_sync_ts = ts
    METRICS.last_sync.set(ts)


def login(result: str) -> None:
    METRICS.logins.labels(result=result).inc()


def bind_store(fn: Callable[[], dict[str, Any]]) -> None:
    METRICS.pulled.store_stats = fn


def bind_cube(fn: Callable[[], dict[str, Any] | None]) -> None:
    METRICS.pulled.cube_state = fn


def bind_actions(fn: Callable[[], list[tuple[str, str, int]]]) -> None:
    METRICS.pulled.action_counts = fn


def bind_decisions(fn: Callable[[], list[tuple[str, int]]]) -> None:
    METRICS.pulled.decision_counts = fn


def set_version(version: str) -> None:
    METRICS.info.labels(version=version).set(1)
