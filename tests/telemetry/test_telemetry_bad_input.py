"""Every kind of bad telemetry is rejected per record with a reason and counted; the rest is kept."""

from __future__ import annotations

import time

import numpy as np
import pytest

from samantha.telemetry import SampleBatch, TelemetryStore


def _samples(store: TelemetryStore) -> int:
    store.flush()
    return int(store.query_scalar("SELECT count(*) FROM samples"))


@pytest.mark.parametrize(("bad", "field", "reason"), [
    ({"value": float("nan")}, "value", "not_finite"),
    ({"value": float("inf")}, "value", "not_finite"),
    ({"ts": float("-inf")}, "ts", "not_finite"),
    ({"value": "12"}, "value", "wrong_type"),
    ({"value": True}, "value", "wrong_type"),
    ({"ts": None}, "ts", "missing"),
    ({"metric": 7}, "metric", "wrong_type"),
    ({"metric": "has space"}, "metric", "bad_name"),
    ({"ts": "+1h"}, "ts", "future"),
    ({"ts": "-30d"}, "ts", "too_old"),
    ({"labels": {f"l{i}": "x" for i in range(17)}}, "labels", "too_many_labels"),
    ({"labels": {"big": "x" * 257}}, "labels.big", "label_too_long"),
    ({"labels": {"n": 3}}, "labels.n", "wrong_type"),
    ({"labels": {"bad-name": "x"}}, "labels.bad-name", "bad_name"),
    ({"labels": ["a"]}, "labels", "wrong_type"),
    ({"unit": "ms"}, "unit", "unknown_field"),
])
def test_bad_sample_rejected_rest_kept(store: TelemetryStore, bad, field, reason) -> None:
    now = time.time()
    bad = dict(bad)
    if bad.get("ts") == "+1h":
        bad["ts"] = now + 3600
    elif bad.get("ts") == "-30d":
        bad["ts"] = now - 30 * 86400
    good = {"metric": "m", "labels": {"k": "v"}, "ts": now, "value": 1.0}
    r = store.ingest_samples([good, {**good, **bad}, good])
    assert r.accepted == 2 and len(r.rejected) == 1
    rej = r.rejected[0]
    assert rej.index == 1 and rej.field == field and reason in rej.reason and rej.detail
    assert _samples(store) == 2
    assert sum(store.stats()["rejected_by_reason"].values()) == 1


def test_non_record_in_batch(store: TelemetryStore) -> None:
    now = time.time()
    r = store.ingest_samples(["not a record", 3, {"metric": "m", "ts": now, "value": 2.0}])
    assert r.accepted == 1 and [(x.index, x.reason) for x in r.rejected] == [(0, "wrong_type"), (1, "wrong_type")]


def test_sample_batch_rejects_only_bad_rows(store: TelemetryStore) -> None:
    now = time.time()
    ts = np.full(6, now)
    ts[4] = now + 10 * 86400
    vals = np.array([1.0, np.nan, 3.0, np.inf, 5.0, 6.0])
    r = store.ingest_samples(SampleBatch("m", {}, ts, vals))
    assert r.accepted == 3
    assert [(x.index, x.field, x.reason) for x in r.rejected] == [
        (1, "value", "not_finite"), (3, "value", "not_finite"), (4, "ts", "ts_in_future")]
    store.flush()
    assert store.read_arrow("SELECT value FROM samples ORDER BY value").column(0).to_pylist() == [1.0, 3.0, 6.0]
    # a batch whose metric or labels are bad rejects every row, naming the field
    r = store.ingest_samples(SampleBatch("9lives", {}, ts[:2], vals[:2]))
    assert r.accepted == 0 and {x.field for x in r.rejected} == {"metric"} and len(r.rejected) == 2
    r = store.ingest_samples(SampleBatch("m", {}, ["a", "b"], [1.0, 2.0]))
    assert r.accepted == 0 and r.rejected[0].reason == "wrong_type"


def test_request_columns_bad_rows(store: TelemetryStore) -> None:
    now = time.time()
    r = store.ingest_request_columns(
        ts=[now, now, now + 86400, now, now, now],
        slot=["active", "canary", "active", "standby", "active", "active"],
        bundle=["v1", "v1", "v1", "", "v1", "v1"],
        latency_ms=[1.0, 2.0, 3.0, 4.0, -5.0, 6.0], ok=[True] * 6,
        divergence=[None, 0.1, None, None, None, float("inf")])
    assert r.accepted == 1
    assert [(x.index, x.field, x.reason) for x in r.rejected] == [
        (1, "slot", "out_of_range"), (2, "ts", "ts_in_future"), (3, "bundle", "out_of_range"),
        (4, "latency_ms", "out_of_range"), (5, "divergence", "not_finite")]
    # wrong types fall back to the row path, which still names row and field
    r = store.ingest_request_columns([now, now], "active", "v1", [1.0, "slow"], [True, 1])
    assert r.accepted == 1 and [(x.index, x.field) for x in r.rejected] == [(1, "latency_ms")]
    # columns of different lengths reject the whole batch
    r = store.ingest_request_columns([now, now], "active", "v1", [1.0], [True, True])
    assert r.accepted == 0 and {x.field for x in r.rejected} == {"latency_ms"}
    store.flush()
    assert store.query_scalar("SELECT count(*) FROM requests") == 2


def test_bad_events(store: TelemetryStore) -> None:
    now = time.time()
    r = store.ingest_events([
        {"ts": now, "kind": "ok"},
        {"ts": now, "kind": ""},
        {"ts": now, "kind": "x", "severity": "apocalyptic"},
        {"ts": now, "kind": "x", "attrs": {"v": float("nan")}},
        {"ts": now, "kind": "x", "attrs": {"blob": "y" * 20000}},
        {"ts": now, "kind": "x", "attrs": {"obj": object()}},
    ])
    assert r.accepted == 1
    assert [(x.field, x.reason) for x in r.rejected] == [
        ("kind", "out_of_range"), ("severity", "out_of_range"), ("attrs", "wrong_type"),
        ("attrs", "too_large"), ("attrs", "wrong_type")]
