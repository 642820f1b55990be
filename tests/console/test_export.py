"""`GET /v1/export/{table}` on a real daemon over the hand-built records: admin only, a time window as
Parquet; the harness measures a running daemon through it exactly as it measures the stopped file."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from samantha.harness.scenario_run import measure_live, measure_stopped
from tests.console.fixture_records import T0
from tests.console.kit import console_daemon

pytestmark = pytest.mark.timeout(120)


def test_export_window_roles_errors_and_measurement(tmp_path: Path) -> None:
    with console_daemon(tmp_path) as d, httpx.Client(base_url=d.url, timeout=30) as c:
        window = {"since": T0 + 39995, "until": T0 + 40000}
        r = c.get("/v1/export/requests", params=window, headers=d.bearer("viewer"))
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        r = c.get("/v1/export/requests", params=window, headers=d.bearer("admin"))
        assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.apache.parquet", r.text
        t = pq.read_table(io.BytesIO(r.content))
        ts = t.column("ts").to_pylist()
        assert t.num_rows == int(r.headers["x-samantha-rows"]) == 50 and ts == sorted(ts)
        assert window["since"] <= ts[0] and ts[-1] < window["until"]
        assert set(t.column_names) >= {"slot", "bundle", "latency_ms", "ok", "divergence", "shadow"}
        # decision records are filtered on their own time column
        r = c.get("/v1/export/rollouts", params={"since": T0 + 20000, "until": T0 + 20301}, headers=d.bearer("admin"))
        got = pq.read_table(io.BytesIO(r.content)).to_pylist()
        assert [(x["rollout_id"], x["rev"]) for x in got] == [("r3", 0), ("r3", 1)]
        for params, status, code in (({"since": 1}, 404, "unknown_table"),
                                     ({"since": T0 + 10, "until": T0}, 422, "invalid")):
            r = c.get("/v1/export/audit" if status == 404 else "/v1/export/requests", params=params,
                      headers=d.bearer("admin"))
            assert r.status_code == status and r.json()["error"]["code"] == code, r.text

        t0, duration = T0 + 39990, 20030.0  # the run ends after the last fixture record
        faults = [{"kind": "degradation", "onset_s": 10.0, "cleared_s": 30.0, "bundle_id": "b2"}]
        live = measure_live(d.url, d.bearer("admin"), faults, t0, duration, t0 + duration)
        assert d.proc.stop() == 0, d.proc.tail()
    stopped = measure_stopped(d.config.store_path, faults, t0, duration, t0 + duration)
    assert live == stopped
    [f] = live["faults"]
    assert f["detected_s"] == 10.0 and live["by_role"]["active"]["n"] == 600  # inc-a opened at onset
    assert [a["kind"] for a in live["actions"]] == ["flip", "alert", "quarantine", "alert"]
    assert live["false_actions"] == 3  # corrective actions long after the window
