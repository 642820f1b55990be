"""Ingest that cannot be forged: writer credentials, writer identity in the store, per-writer budgets.

In-process parts here (a real DuckDB store, the real auth middleware and ingest router through
Starlette's test client); `test_forged_ingest_on_the_real_daemon` checks the same on `samantha run`.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from samantha.api.auth import AuthService, BindRefused, check_binding, install
from samantha.api.client import writer_headers
from samantha.core.clock import REAL_CLOCK
from samantha.core.config import SamanthaConfig
from samantha.core.operators import add_operator
from samantha.gates.engine import GateEngine
from samantha.gates.spec import ThresholdGate
from samantha.telemetry.ingest_http import make_ingest_router
from samantha.telemetry.queries import request_window
from samantha.telemetry.store import TelemetryStore


def _rows(n: int, ok: bool, now: float) -> bytes:
    return b"".join(orjson.dumps({"ts": now - 0.5 + i * 1e-4, "slot": "active", "bundle": "b1", "latency_ms": 5.0,
                                  "ok": ok}) + b"\n" for i in range(n))


def _config(tmp_path: Path, **api: object) -> SamanthaConfig:
    return SamanthaConfig.model_validate({"data_dir": str(tmp_path / "state"), "api": api})


def _app(cfg: SamanthaConfig) -> tuple[TestClient, TelemetryStore, AuthService]:
    store = TelemetryStore.open(cfg)
    svc = AuthService.from_config(cfg, REAL_CLOCK)
    app = FastAPI()
    app.include_router(make_ingest_router(store, admit=svc.writers.admit if svc.writers else None))
    install(app, svc)
    return TestClient(app), store, svc


def _committed(store: TelemetryStore) -> int:
    store.flush()
    return store.query_scalar("SELECT count(*) FROM requests")


def test_forged_requests_are_refused_and_no_gate_sees_them(tmp_path: Path) -> None:
    cfg = _config(tmp_path, writers={"router": {"tables": ["requests", "samples"]},
                                     "lab": {"tables": ["requests", "events"]}})
    Path(cfg.data_dir).mkdir(parents=True)
    viewer = add_operator(cfg.resolve(cfg.api.operators_file), "vic", "viewer")
    client, store, _ = _app(cfg)
    try:
        now = time.time()
        forged = _rows(200, ok=False, now=now)  # errors on the active slot: what would trigger a flip
        for headers, status, code in (({}, 401, "unauthenticated"),
                                      ({"Authorization": f"Bearer {viewer}"}, 403, "forbidden"),  # stolen viewer
                                      ({"Authorization": "Bearer sam_guessed"}, 401, "bad_token")):
            r = client.post("/v1/ingest/requests", content=forged, headers=headers)
            assert r.status_code == status and r.json()["error"]["code"] == code, r.text
            assert r.json()["error"]["reason"]
        assert _committed(store) == 0

        # a credentialed writer that is not the router: stored (with its name), never judged
        r = client.post("/v1/ingest/requests", content=forged, headers=writer_headers(cfg, "lab"))
        assert r.status_code == 200 and r.json() == {"accepted": 200, "rejected": [], "shed": 0, "writer": "lab"}
        r = client.post("/v1/ingest/requests", content=_rows(100, ok=True, now=now), headers=writer_headers(cfg))
        assert r.status_code == 200 and r.json()["writer"] == "router"
        store.flush()
        stored = store.read_arrow("SELECT writer, count(*) AS n FROM requests GROUP BY ALL").to_pylist()
        assert {r["writer"]: r["n"] for r in stored} == {"lab": 200, "router": 100}
        w = request_window(store, 1.0, slot="active", now=now)
        assert w.count == 100 and w.errors == 0  # the router's rows only
        gate = ThresholdGate(name="active-error-burst", metric="error_rate", aggregate="mean", op="<=", value=0.2,
                             slot="active", window=1.0, min_samples=50)
        (v,) = GateEngine(store).evaluate([gate], now=now)
        assert v.status == "pass", v

        # a writer may write only its tables
        r = client.post("/v1/ingest/events", content=b"{}", headers=writer_headers(cfg, "router"))
        assert r.status_code == 403 and "api.writers.router.tables" in r.json()["error"]["reason"]
        # a client cannot claim another writer's name in the record
        r = client.post("/v1/ingest/requests", content=orjson.dumps({"ts": now, "slot": "active", "bundle": "b1",
                                                                     "latency_ms": 1, "ok": False,
                                                                     "writer": "router"}),
                        headers=writer_headers(cfg, "lab"))
        assert r.json()["accepted"] == 0 and r.json()["rejected"][0]["field"] == "writer"
    finally:
        store.close()


def test_each_writer_has_a_row_budget(tmp_path: Path) -> None:
    cfg = _config(tmp_path, writers={"router": {"tables": ["requests"], "max_rows": 300, "rate_window_s": 60},
                                     "host": {"tables": ["samples"]}})
    client, store, _ = _app(cfg)
    try:
        now = time.time()
        assert client.post("/v1/ingest/requests", content=_rows(250, True, now),
                           headers=writer_headers(cfg)).status_code == 200
        r = client.post("/v1/ingest/requests", content=_rows(100, True, now), headers=writer_headers(cfg))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1, r.text
        assert "api.writers.router.max_rows" in r.json()["error"]["reason"]
        r = client.post("/v1/ingest/requests", content=_rows(301, True, now), headers=writer_headers(cfg))
        assert r.status_code == 413 and "split" in r.json()["error"]["reason"]
        sample = orjson.dumps({"metric": "m", "ts": now, "value": 1.0})
        assert client.post("/v1/ingest/samples", content=sample,
                           headers=writer_headers(cfg, "host")).status_code == 200  # budgets are per writer
        assert _committed(store) == 250
    finally:
        store.close()


def test_open_ingest_is_an_explicit_loopback_only_opt_out(tmp_path: Path) -> None:
    cfg = _config(tmp_path, open_ingest_on_loopback=True)
    client, store, _ = _app(cfg)
    try:
        r = client.post("/v1/ingest/requests", content=_rows(3, True, time.time()))
        assert r.status_code == 200 and r.json()["writer"] == "anonymous"
    finally:
        store.close()
    with pytest.raises(BindRefused, match="open_ingest_on_loopback.*not loopback"):
        check_binding(SamanthaConfig.model_validate({"api": {"host": "10.0.0.5", "open_ingest_on_loopback": True,
                                                             "tls_cert": "c.pem", "tls_key": "k.pem"}}))


def test_writer_names_and_tables_are_checked_in_config() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="writer name"):
        SamanthaConfig.model_validate({"api": {"writers": {"local": {"tables": ["requests"]}}}})
    with pytest.raises(ValidationError, match="tables"):
        SamanthaConfig.model_validate({"api": {"writers": {"x": {"tables": ["incidents"]}}}})
