"""Pure logic and the SRE tables on a real DuckDB file: notify datagrams, graph routing, reconciliation
checks, the write-ahead ledger, incident grouping, advisory triage."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from samantha.core.clock import SimClock
from samantha.core.config import SamanthaConfig
from samantha.cube.protocol import CubeState, QuarantineEntry, SlotState, Weights
from samantha.daemon.sd_notify import Notifier, watchdog_interval_s
from samantha.loop import effects, tables
from samantha.loop.graph import after_decide
from samantha.loop.incidents import IncidentBook
from samantha.loop.ledger import ActionLedger
from samantha.loop.triage import Triager, rule_triage
from samantha.telemetry.store import TelemetryStore

A, B = "a" * 64, "b" * 64


def cube(active: str = "A", weight: float = 0.0, quarantine: tuple[str, ...] = (), safe: bool = False) -> CubeState:
    slots = [SlotState(name="A", role="active" if active == "A" else "standby", bundle_id=A, loaded=True,
                       verified=True, healthy=True),
             SlotState(name="B", role="active" if active == "B" else "standby", bundle_id=B, loaded=True,
                       verified=True, healthy=True)]
    return CubeState(slots=slots, active=active, weights=Weights(active=100 - weight, standby=weight), shadow=False,
                     quarantine=[QuarantineEntry(bundle_id=q, at=0.0) for q in quarantine], safe_mode=safe,
                     generation=1, ts=0.0)


def test_notifier_sends_datagrams_to_a_real_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "n.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as srv:
        srv.bind(path)
        srv.settimeout(2)
        n = Notifier(path)
        assert n.ready("up") and n.watchdog() and n.stopping()
        assert srv.recv(100) == b"READY=1\nSTATUS=up"
        assert srv.recv(100) == b"WATCHDOG=1"
        assert srv.recv(100) == b"STOPPING=1"
        for _ in range(200):  # nobody reads: the queue fills, and sending neither blocks nor raises
            n.watchdog()
        assert n.errors > 0
    assert not Notifier(str(tmp_path / "gone.sock")).ready()
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not Notifier().enabled and not Notifier().ready()
    monkeypatch.setenv("WATCHDOG_USEC", "3000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval_s() == 1.5
    monkeypatch.setenv("WATCHDOG_PID", "1")  # armed for another process
    assert watchdog_interval_s() is None


def test_routing_after_decide() -> None:
    assert after_decide({"decisions": [{"id": "x"}], "pending": {}}) == "act"
    assert after_decide({"decisions": [], "pending": {"intent": 1}}) == "act"  # an intent left by a crash
    assert after_decide({"decisions": [], "pending": {"done": 2}}) == "verify"
    assert after_decide({"decisions": [], "pending": {}}) == "record"


def test_applied_in_reads_each_effect_from_cube_state() -> None:
    before = effects.snapshot(cube("A", weight=5))
    row = {"before": before, "proposed": {"target_bundle": B}}
    assert not effects.applied_in({**row, "kind": "flip"}, cube("A"))
    assert effects.applied_in({**row, "kind": "flip"}, cube("B"))
    assert not effects.applied_in({**row, "kind": "quarantine"}, cube("A"))
    assert effects.applied_in({**row, "kind": "quarantine"}, cube("A", quarantine=(B,)))
    assert not effects.applied_in({**row, "kind": "abort_rollout"}, cube("A", weight=5))
    assert effects.applied_in({**row, "kind": "abort_rollout"}, cube("A", weight=0))
    assert effects.applied_in({**row, "kind": "safe_mode"}, cube("A", safe=True))


@pytest.fixture
def store(tmp_path: Path, sim_clock: SimClock):
    s = TelemetryStore.open(SamanthaConfig(data_dir=str(tmp_path)), sim_clock)
    tables.create(s.write_sql)
    yield s
    s.close()


def test_ledger_write_ahead_is_idempotent_and_feeds_policy_history(store: TelemetryStore, sim_clock: SimClock) -> None:
    led = ActionLedger(store, sim_clock)
    row = {"id": "act-" + "1" * 24, "kind": "flip", "target": B, "reason": "r", "requested_by": "playbook",
           "playbook": "p", "playbook_version": 1, "incident_id": None, "proposed": {"kind": "flip"},
           "evidence": [{"gate": "g"}], "before": {"active": "A"}, "created_ts": sim_clock.time()}
    assert led.write_intent(row) is True
    assert led.write_intent(row) is False  # a resumed node does not write a second intent
    assert led.get(row["id"])["status"] == "intent"
    assert [h.kind for h in led.history(sim_clock.time() - 10)] == ["flip"]
    sim_clock.advance(1)
    led.mark(row["id"], "done", {"cube": {"applied": True}})
    got = led.get(row["id"])
    assert got["status"] == "done" and got["done_ts"] == sim_clock.time() and got["result"]["cube"]["applied"]
    led.mark(row["id"], "failed", {"reason": "x"})
    assert led.history(0) == []  # a failed action never reached the Cube's state: not counted
    with pytest.raises(ValueError):
        led.mark(row["id"], "exploded")
    assert led.counts() == {"failed": 1}


def test_incidents_group_verdicts_link_actions_and_close_when_quiet(store: TelemetryStore,
                                                                    sim_clock: SimClock) -> None:
    book = IncidentBook(store, sim_clock)
    v1 = {"gate": "active-error-rate", "kind": "threshold", "status": "fail", "reason": "0.4 > 0.05",
          "values": {"metric": "error_rate"}}
    v2 = {"gate": "latency-slo-p99", "kind": "threshold", "status": "fail", "reason": "p99 300 > 250",
          "values": {"metric": "latency_ms"}}
    i1 = book.record_firing("active:aaaa", "active regression", "warning", "active-regression", [v1])
    i2 = book.record_firing("active:aaaa", "latency", "critical", "latency-slo", [v2])
    assert i1 == i2  # same slot problem: one incident
    book.link_action(i1, "act-1")
    book.add_refusal(i1, {"violated": ["flip-rate-limit"]})
    sim_clock.advance(5)
    assert book.absorb_failing([v1]) == [i1]
    assert book.absorb_failing([{**v1, "gate": "unrelated"}]) == []
    inc = book.get(i1)
    assert inc["severity"] == "critical" and set(inc["gates"]) == {"active-error-rate", "latency-slo-p99"}
    assert inc["actions"] == ["act-1"] and inc["refusals"][0]["violated"] == ["flip-rate-limit"]
    assert book.close_quiet(30) == []
    sim_clock.advance(31)
    assert book.close_quiet(30) == [i1]
    assert book.get(i1)["status"] == "closed" and book.open_incidents() == []
    assert IncidentBook(store, sim_clock).open_incidents() == []  # reloaded from the table


def test_triage_is_advisory_and_asynchronous(store: TelemetryStore, sim_clock: SimClock) -> None:
    book = IncidentBook(store, sim_clock)
    v = {"gate": "active-error-rate", "kind": "threshold", "status": "fail", "reason": "0.4 > 0.05", "values": {}}
    inc = book.record_firing("active:x", "active regression", "critical", "active-regression", [v])
    cause, detail = rule_triage(book.open_incidents()[0])
    assert cause == "errors" and detail == {"method": "rules", "causes": {"errors": 1}}

    def slow(incident: dict) -> tuple[str, dict]:
        time.sleep(0.5)
        return "latency", {"method": "test"}

    tri = Triager(book, slow).start()
    try:
        t0 = time.perf_counter()
        assert tri.submit_changed(book.open_incidents()) == 1
        assert time.perf_counter() - t0 < 0.1  # submitting never waits for triage
        assert tri.submit_changed(book.open_incidents()) == 0  # unchanged: not triaged again
        deadline = time.monotonic() + 10
        while book.get(inc)["cause"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
        got = book.get(inc)
        assert got["cause"] == "latency" and got["triage"] == {"method": "test"}
        assert got["summary"] is None  # triage never writes the summary: code does, from the evidence
    finally:
        tri.stop()
