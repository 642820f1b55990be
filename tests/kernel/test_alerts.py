"""Alerts: lifecycle and dedup in a real DuckDB file, forwarded over real loopback HTTP to a receiver
that is down, then up."""

import json
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
import pytest

from samantha.core.config import AlertsConfig
from samantha.uplink.alerts import ZERO_TIME, AlertManager, dedup_key


class Receiver:
    """An Alertmanager-webhook stand-in: a real HTTP server on 127.0.0.1 that records what it is sent."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.mode = "ok"  # ok | 503 | hang
        self.port = 0
        self._server = None
        self._thread = None

    def start(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.mode == "hang":
                    time.sleep(1.0)
                if receiver.mode == "ok":
                    receiver.bodies.append(json.loads(body))
                self.send_response(200 if receiver.mode == "ok" else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture
def receiver():
    r = Receiver().start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def db(tmp_path):
    conn = duckdb.connect(str(tmp_path / "samantha.duckdb"))
    try:
        yield conn
    finally:
        conn.close()


def manager(conn, clock, *urls, **kw):
    cfg = AlertsConfig(receivers=list(urls), timeout_s=kw.pop("timeout_s", 0.5), backoff_initial_s=1,
                       backoff_max_s=8, **kw)
    return AlertManager(conn, cfg, clock)


def test_repeat_fires_update_one_record_and_resolve_closes_it(db, sim_clock):
    am = manager(db, sim_clock)
    a = am.fire("CanaryErrors", "critical", "v2 errors 21%", {"bundle": "v2"})
    sim_clock.advance(5)
    b = am.fire("CanaryErrors", "critical", "v2 errors 24%", {"bundle": "v2"})
    assert b.id == a.id and b.fire_count == 2 and b.summary == "v2 errors 24%"
    assert b.starts_at == a.starts_at and b.updated_at == a.updated_at + 5
    assert len(am.active()) == 1
    other = am.fire("CanaryErrors", "critical", "v3", {"bundle": "v3"})  # other labels, other alert
    assert other.id != a.id and len(am.active()) == 2

    sim_clock.advance(5)
    r = am.resolve(dedup_key("CanaryErrors", {"bundle": "v2"}))
    assert r.status == "resolved" and r.ends_at == a.starts_at + 10
    assert am.resolve(r.key) is None  # nothing fires under it any more
    again = am.fire("CanaryErrors", "critical", "back", {"bundle": "v2"})
    assert again.id not in (a.id, other.id) and again.fire_count == 1
    assert [x.id for x in am.active()] == [other.id, again.id]


def test_a_severity_change_resolves_the_old_alert_and_fires_a_new_one(db, sim_clock, receiver):
    am = manager(db, sim_clock, receiver.url)
    w = am.fire("HostMemory", "warning", "87%", key="host-mem")
    c = am.fire("HostMemory", "critical", "95%", key="host-mem")
    assert c.id != w.id and [x.id for x in am.active()] == [c.id]
    assert am.deliver() == {"sent": 3, "failed": 0}
    assert [(b["status"], b["alerts"][0]["labels"]["severity"]) for b in receiver.bodies] == \
        [("firing", "warning"), ("resolved", "warning"), ("firing", "critical")]


def test_payload_is_alertmanager_webhook_v4(db, sim_clock):
    am = manager(db, sim_clock, "http://127.0.0.1:9/x", sender="cube-7")
    a = am.fire("ActiveSlotFailing", "critical", "active errors 40%", {"slot": "active"}, {"runbook": "flip"})
    p = am.payload(a)
    assert p["version"] == "4" and p["status"] == "firing" and p["receiver"] == "cube-7"
    assert p["groupKey"].startswith("{}:{") and a.fingerprint in p["groupKey"]
    (alert,) = p["alerts"]
    assert alert["labels"] == {"alertname": "ActiveSlotFailing", "severity": "critical", "cube": "cube-7",
                               "slot": "active"}
    assert alert["annotations"] == {"summary": "active errors 40%", "runbook": "flip"}
    assert datetime.fromisoformat(alert["startsAt"]).timestamp() == pytest.approx(sim_clock.time(), abs=0.001)
    assert alert["endsAt"] == ZERO_TIME
    sim_clock.advance(30)
    resolved = am.payload(am.resolve(a.key))
    assert resolved["status"] == "resolved" and resolved["alerts"][0]["status"] == "resolved"
    assert datetime.fromisoformat(resolved["alerts"][0]["endsAt"]).timestamp() == pytest.approx(sim_clock.time())


@pytest.mark.timeout(60)
def test_down_then_up_every_notification_arrives_once_in_order(db, sim_clock, receiver):
    port = receiver.port
    receiver.stop()  # the receiver is down: connections are refused
    am = manager(db, sim_clock, receiver.url)
    for i in range(5):
        am.fire(f"A{i}", "warning", f"alert {i}")
        am.fire(f"A{i}", "warning", f"alert {i} again")  # a repeat: no new notification
    am.resolve(dedup_key("A1", {}))
    assert len(am.pending()) == 6

    assert am.deliver() == {"sent": 0, "failed": 1}  # one attempt, then this receiver waits its backoff
    assert am.pending()[0]["attempts"] == 1 and "Connect" in am.pending()[0]["last_error"]
    assert am.deliver() == {"sent": 0, "failed": 0}  # still backing off: no attempt
    sim_clock.advance(1)
    assert am.deliver() == {"sent": 0, "failed": 1}
    assert am.pending()[0]["next_attempt_at"] == sim_clock.time() + 2  # exponential backoff

    receiver.port = port
    receiver.start()
    sim_clock.advance(2)
    assert am.deliver() == {"sent": 6, "failed": 0}
    assert am.pending() == []
    got = [(b["alerts"][0]["labels"]["alertname"], b["status"]) for b in receiver.bodies]
    assert got == [("A0", "firing"), ("A1", "firing"), ("A2", "firing"), ("A3", "firing"), ("A4", "firing"),
                   ("A1", "resolved")]
    assert am.deliver() == {"sent": 0, "failed": 0}
    assert len(receiver.bodies) == 6  # exactly once


@pytest.mark.timeout(60)
def test_the_queue_survives_a_restart(tmp_path, sim_clock, receiver):
    path = tmp_path / "samantha.duckdb"
    receiver.mode = "503"
    conn = duckdb.connect(str(path))
    am = manager(conn, sim_clock, receiver.url)
    am.fire("Persisted", "critical", "before restart")
    assert am.deliver()["failed"] == 1 and receiver.bodies == []
    am.close()
    conn.close()

    receiver.mode = "ok"
    conn = duckdb.connect(str(path))
    try:
        am = manager(conn, sim_clock, receiver.url)
        sim_clock.advance(1)
        assert am.deliver() == {"sent": 1, "failed": 0}
        assert receiver.bodies[0]["alerts"][0]["annotations"]["summary"] == "before restart"
        assert [a.name for a in am.active()] == ["Persisted"]
    finally:
        conn.close()


@pytest.mark.timeout(60)
def test_each_receiver_keeps_its_own_order_and_a_dead_one_does_not_block_the_other(db, sim_clock, receiver):
    dead = Receiver().start()
    dead.mode = "503"
    try:
        am = manager(db, sim_clock, dead.url, receiver.url)
        am.fire("X", "info", "x")
        am.fire("Y", "info", "y")
        assert am.deliver() == {"sent": 2, "failed": 1}
        assert [b["alerts"][0]["labels"]["alertname"] for b in receiver.bodies] == ["X", "Y"]
        assert [p["receiver"] for p in am.pending()] == [dead.url, dead.url]
    finally:
        dead.stop()


@pytest.mark.timeout(60)
def test_a_hanging_receiver_costs_one_timeout_per_tick(db, sim_clock, receiver):
    receiver.mode = "hang"
    am = manager(db, sim_clock, receiver.url, timeout_s=0.2)
    for i in range(10):
        am.fire(f"H{i}", "warning", "h")
    t0 = time.monotonic()
    assert am.deliver() == {"sent": 0, "failed": 1}
    assert time.monotonic() - t0 < 0.9  # one 0.2 s timeout, not ten (generous margin for a shared machine)
    assert "Timeout" in am.pending()[0]["last_error"]


def test_the_send_budget_bounds_a_tick(db, sim_clock, receiver):
    am = manager(db, sim_clock, receiver.url, max_sends_per_tick=3)
    for i in range(7):
        am.fire(f"B{i}", "info", "b")
    assert [am.deliver()["sent"] for _ in range(4)] == [3, 3, 1, 0]
    assert [b["alerts"][0]["labels"]["alertname"] for b in receiver.bodies] == [f"B{i}" for i in range(7)]


def test_no_receivers_means_local_records_only(db, sim_clock):
    am = manager(db, sim_clock)
    am.fire("Local", "info", "kept here")
    assert am.pending() == [] and am.deliver() == {"sent": 0, "failed": 0}
    assert am.history()[0].name == "Local"


def test_bad_receiver_urls_are_config_errors():
    with pytest.raises(ValueError, match="must be an http"):
        AlertsConfig(receivers=["ftp://x"])
