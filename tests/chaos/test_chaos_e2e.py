"""End to end on the real twin with a real daemon (chaos mode) and real Chaos Toolkit runs."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from samantha.chaos.approvals import make_decision
from samantha.core.operators import add_operator
from samantha.core.signing import KeyPair, sha256_hex
from samantha.gates.engine import GateEngine
from samantha.gates.registry import GATE_ADAPTER
from samantha.gates.replay import Recording
from samantha.harness.daemon_process import DaemonProcess
from tests.chaos.kit import chaos_env, wait_for

EXPERIMENTS = Path(__file__).parents[2] / "experiments"


def run_template(host: DaemonProcess, name: str) -> dict:
    r = host.post("/v1/chaos/run", json={"template": (EXPERIMENTS / name).read_text(), "source": name})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.timeout(240)
def test_standby_latency_finding_becomes_a_gate_that_fires_in_a_replay(tmp_path):
    with chaos_env(tmp_path) as (twin, host):
        assert all(v == "ok" for v in host.post("/v1/chaos/selftest").json()["results"].values())
        bad = host.post("/v1/chaos/run", json={"template": "title: bad one\ntarget: standby\n"
                                                           "fault: {kind: latency, latency_ms: -5}\n", "source": "x.yaml"})
        assert bad.status_code == 422 and bad.json()["error"]["problems"][0]["line"] == 3, bad.text
        unknown = host.post("/v1/chaos/gates", json={"names": ["no-such-gate"]})
        assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "names"
        out = run_template(host, "standby-latency-learn.yaml")
        assert out["outcome"] == "completed", json.dumps(out, indent=1)[:3000]
        acts = {a["name"]: a["status"] for a in out["summary"]["activities"]}
        assert acts["inject:latency"] == "succeeded" and out["summary"]["rollbacks"][0]["status"] == "succeeded"
        kinds = {f["kind"]: f for f in out["findings"]}
        lat = kinds["path_latency"]["data"]
        assert lat["fault_p99_ms"] > 150 > lat["baseline_p99_ms"], lat
        [gate] = out["learned_gates"]
        prov = gate["provenance"]
        journal = Path(out["journal"])
        assert prov["source"] == "learned" and prov["experiment_id"] == out["experiment_id"]
        assert prov["journal_sha256"] == sha256_hex(journal.read_bytes()) and prov["version"] == 1
        listed = {g["name"]: g for g in host.get("/v1/chaos/gates")["gates"]}
        assert listed[gate["name"]]["provenance"]["source"] == "learned"
        assert listed["latency-slo-p99"]["provenance"]["source"] == "builtin"
        assert [g["name"] for g in host.get("/v1/chaos/outbox")["proposed_gates"]] == [gate["name"]]
        assert all(i["state"] == "reverted" for i in out["injections"])
        assert host.get("/v1/chaos/leftovers")["total"] == 0
        host.stop()
        store = Path(host.config.data_dir) / "telemetry.duckdb"
    # replay the recorded telemetry through the learned gate: it passes before the fault and fires during it
    g = GATE_ADAPTER.validate_python(gate["spec"])
    with Recording(store) as rec:
        engine = GateEngine(rec)
        before = engine.evaluate([g], now=lat["from"])[0]
        during = engine.evaluate([g], now=lat["from"] + 6.0)[0]
    assert before.status == "pass", before
    assert during.status == "fail", during


CHAOS_CLI = Path(sys.executable).with_name("chaos")


@pytest.mark.timeout(240)
def test_every_shipped_template_exports_a_document_chaos_toolkit_validates(tmp_path):
    with chaos_env(tmp_path) as (twin, host):
        active = twin.cube.state().active
        for t in sorted(EXPERIMENTS.glob("*.yaml")):
            out = tmp_path / f"{t.stem}.json"
            r = subprocess.run([sys.executable, "-m", "samantha", "chaos", "export", str(t), "-c",
                                str(host.config_path), "-o", str(out), "--json"],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, (t.name, r.stdout, r.stderr)
            res = json.loads(r.stdout)
            doc = json.loads(out.read_text())
            assert doc == res["experiment"] and res["verdict"] in ("sanctioned", "escalate", "reject")
            [ext] = doc["extensions"]
            assert ext["preflight"]["verdict"] == res["verdict"]  # a hand run still carries Samantha's verdict
            assert doc["rollbacks"][0]["provider"]["func"] == "revert_experiment"
            if t.stem == "kill-active-slot":  # the restart probe watches the live Cube's active slot
                [probe] = [a for a in doc["method"] if a["name"] == "slot-restarts"]
                assert probe["provider"]["arguments"]["role_slot"] == active
            v = subprocess.run([str(CHAOS_CLI), "--no-log-file", "validate", str(out)], capture_output=True,
                               text=True, timeout=120, cwd=tmp_path)
            assert v.returncode == 0 and "experiment syntax and semantic look valid" in v.stdout + v.stderr, (
                t.name, v.stdout[-2000:], v.stderr[-2000:])
        bad = host.post("/v1/chaos/export", json={"template": "title: x\n", "source": "bad.yaml"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_experiment", bad.text
        assert host.get("/v1/chaos/experiments")["experiments"] == []  # exporting runs nothing


def _operator(host: DaemonProcess, tmp_path: Path, name: str, role: str, expires_in: float = 3600) -> KeyPair:
    key = KeyPair.generate()
    key.save(tmp_path / f"{name}.key")
    add_operator(Path(host.config.data_dir) / "operators.yaml", name, role, key.public, time.time() + expires_in)
    return key


@pytest.mark.timeout(240)
def test_kill_active_is_escalated_then_a_signed_approval_resumes_it_after_a_restart(tmp_path):
    with chaos_env(tmp_path) as (twin, host):
        pid_before = twin.st["children"]["slot-" + twin.cube.state().active.lower()]
        out = run_template(host, "kill-active-slot.yaml")
        assert out["outcome"] == "escalated"
        codes = {r["code"] for r in out["preflight"]["reasons"]}
        assert "active-slot-down" in codes
        aid, key = out["approval"]["id"], out["approval"]["proposal"]["key"]
        assert host.get("/v1/chaos/experiments")["experiments"] == []  # not run
        item = host.get(f"/v1/chaos/approvals/{aid}")
        assert item["status"] == "pending" and item["health"]["cube"] and item["blast"]["role"] == "active"
        assert item["revert_plan"]

        alice = _operator(host, tmp_path, "alice", "approver")
        viewer = _operator(host, tmp_path, "victor", "viewer")
        stranger = KeyPair.generate()
        old = _operator(host, tmp_path, "olga", "approver", expires_in=-10)
        now = time.time()

        def send(doc: dict, verb: str = "approve") -> tuple[int, dict]:
            r = host.post(f"/v1/chaos/approvals/{aid}/{verb}", json=doc)
            return r.status_code, r.json()

        refused = {
            "untrusted key": make_decision(aid, "approve", key, stranger, operator="x", now=now),
            "viewer role": make_decision(aid, "approve", key, viewer, operator="victor", now=now),
            "expired key": make_decision(aid, "approve", key, old, operator="olga", now=now),
            "expired decision": make_decision(aid, "approve", key, alice, operator="alice", now=now - 400, ttl_s=60),
            "other proposal": make_decision(aid, "approve", "prop-0000000000000000", alice, operator="alice", now=now),
        }
        tampered = make_decision(aid, "deny", key, alice, operator="alice", now=now)
        tampered["decision"] = "approve"
        refused["tampered"] = tampered
        expect = {"untrusted key": "bad_signature", "viewer role": "role", "expired key": "operator_key_expired",
                  "expired decision": "decision_expired", "other proposal": "wrong_proposal",
                  "tampered": "bad_signature"}
        for what, doc in refused.items():
            status, body = send(doc)
            assert status in (403, 409, 422) and body["error"]["code"] == expect[what], (what, body)
        assert host.get(f"/v1/chaos/approvals/{aid}")["status"] == "pending"

        host.stop()  # the waiting thread survives a restart (SQLite checkpointer)
        host.start().wait_ready()
        good = make_decision(aid, "approve", key, alice, operator="alice", now=time.time())
        status, body = send(good)
        assert status == 200, body
        res = body["result"]
        # killing the serving slot may breach active-error-rate: the run then aborts early, as it should
        assert res["outcome"] in ("completed", "aborted"), json.dumps(res, indent=1)[:3000]
        [kill] = [i for i in res["injections"] if i["kind"] == "kill_slot"]
        assert kill["state"] == "reverted" and "healthy again" in kill["detail"], kill
        assert body["approval"]["status"] == "executed"
        exp = host.get(f"/v1/chaos/experiments/{res['experiment_id']}")
        assert exp["approval_id"] == aid and exp["preflight"]["verdict"] == "escalate"  # re-checked at execution
        wait_for(lambda: twin.cube.state().slot("active").healthy, 20, "active slot healthy again")
        st = json.loads(Path(twin.st["run_dir"], "twin.json").read_text())
        assert st["children"]["slot-" + twin.cube.state().active.lower()] != pid_before  # really killed, restarted
        status, body = send(good)  # replay of the same signed decision
        assert status == 409 and body["error"]["code"] in ("replay", "not_pending"), body


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_daemon_killed_mid_experiment_leaves_no_fault_after_recovery(tmp_path):
    cases = [("latency", "standby", {"latency_ms": 300, "duration_s": 60}, "toxics"),
             ("sigstop", "standby", {"duration_s": 50}, "stopped"),
             ("memory_hog", "host", {"mb": 32, "duration_s": 60}, "stressors"),  # cpu_burn: no CPU headroom here
             ("disk_pressure", "host", {"mb": 8, "duration_s": 60}, "ballast")]
    with chaos_env(tmp_path) as (twin, host):
        assert all(v == "ok" for v in host.post("/v1/chaos/selftest").json()["results"].values())
        for kind, target, params, where in cases:
            proposal = {"kind": kind, "target": target, "params": params}
            wait_for(lambda p=proposal: host.post("/v1/chaos/preflight", json=p).json()["verdict"] == "sanctioned",
                     60, f"{kind} sanctioned", interval=0.5)
            t = threading.Thread(target=lambda p=proposal: _swallow(host, p), daemon=True)
            t.start()

            def injected(k: str = kind) -> bool:
                led = host.get("/v1/chaos/ledger", params={"open_only": True})["injections"]
                return any(e["kind"] == k and e["state"] == "active" for e in led)

            wait_for(injected, 30, f"{kind} injected")
            left = host.get("/v1/chaos/leftovers")
            assert left[where], (kind, left)  # the fault is really in
            host.kill()  # SIGKILL: no rollback runs; the runner dies with it (PDEATHSIG)
            t.join(10)
            host.start().wait_ready()  # start-up recovers the ledger before it serves
            left = host.get("/v1/chaos/leftovers")
            assert left["total"] == 0 and not (left["noise"] or {}).get("fraction"), (kind, left)
            assert host.get("/v1/chaos/ledger", params={"open_only": True})["injections"] == []
            rec = host.get("/v1/chaos/ledger")["recovery"]
            assert any(r["kind"] == kind and r["reverted"] for r in rec["reverted"]), rec


def _swallow(host: DaemonProcess, proposal: dict) -> None:
    with contextlib.suppress(Exception):  # the daemon is killed under this request on purpose
        host.post("/v1/chaos/run", json={"proposal": proposal}, timeout=120)
