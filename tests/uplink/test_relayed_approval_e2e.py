"""An approval decision relayed by a real hub resumes an experiment escalated in the real daemon.

The daemon (`samantha run`, chaos on) beside the real twin escalates "kill the active slot"
and the request reaches the hub's queue; the operator signs decisions with `samantha hub
decide` and the hub relays them. A decision
signed by a key outside the policy module is refused (audit + alert) and the item stays
pending; the operator's approval runs the experiment to its end; the same document replayed
is refused; a later escalation is denied through the hub and never runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from samantha.api.client import auth_headers
from samantha.core.signing import KeyPair
from tests.sre.kit import stopped_audit, wait_for
from tests.uplink.kit import cli, hub_twin_daemon, publish_module

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
CUBE = "cube-relay"
KILL = (Path(__file__).parents[2] / "experiments" / "kill-active-slot.yaml").read_text()


def test_a_decision_relayed_by_the_hub_resumes_or_closes_an_escalated_experiment(tmp_path):
    KeyPair.generate().save(stranger_path := tmp_path / "mallory.key")
    with hub_twin_daemon(tmp_path, CUBE, rps=50, chaos={"probe_interval_s": 0.3}) as (hub_url, hub_key_path, ana,
                                                                                     twin, d):
        ana.save(ana_path := tmp_path / "ana.key")
        h = auth_headers(d.config)

        def get(path: str, **kw: Any) -> Any:
            r = httpx.get(f"{d.url}{path}", headers=h, timeout=10, **kw)
            r.raise_for_status()
            return r.json()

        def relayed() -> dict[str, dict[str, Any]]:
            """The Cube's verdict on each relayed decision, by nonce."""
            return {x["doc"]["nonce"]: x for x in get("/v1/uplink/decisions")["decisions"]
                    if x["kind"] == "samantha/approval-decision"}

        def decide(aid: str, verb: str, key: Path, operator: str, proposal_key: str) -> dict[str, Any]:
            """`samantha hub decide`, then the Cube's verdict once the uplink pulled it."""
            before = set(relayed())
            r = cli(["hub", "decide", aid, "--cube", CUBE, f"--{verb}", "--key", str(key), "--hub", hub_url,
                     "--operator", operator, "--proposal-key", proposal_key, "--reason", "e2e"])
            assert r.returncode == 0, r.stderr + r.stdout
            return wait_for(lambda: [v for k, v in relayed().items() if k not in before], 30,
                            f"{verb} by {operator} pulled")[0]

        def escalate() -> dict[str, Any]:
            def once() -> dict[str, Any] | None:
                out = httpx.post(f"{d.url}/v1/chaos/run", json={"template": KILL, "source": "kill-active-slot.yaml"},
                                 headers=h, timeout=120).json()
                return out if out.get("outcome") == "escalated" else None  # rejected while the Cube settles
            return wait_for(once, 120, "kill-active-slot escalated", interval=2)["approval"]

        publish_module(tmp_path, hub_url, hub_key_path, 1, "1h", ana)
        wait_for(lambda: get("/v1/uplink/status")["policy"].get("version") == 1, 30, "module v1 applied")
        item = escalate()
        aid, pkey = item["id"], item["proposal"]["key"]
        assert get("/v1/chaos/experiments")["experiments"] == []
        # the request reaches the hub's queue with what the operator signs against
        queued = wait_for(lambda: {x["doc"]["id"]: x["doc"] for x in httpx.get(
            f"{hub_url}/v1/fleet/queue/approval_requests", timeout=10).json()["items"]}.get(aid), 30,
            "the escalation queued at the hub")
        assert queued["proposal_key"] == pkey and "active-slot-down" in {r["code"] for r in queued["reasons"]}

        # a key the policy module does not list: refused with its reason and an alert; nothing runs
        bad = decide(aid, "approve", stranger_path, "mallory", pkey)
        assert bad["status"] == "refused" and bad["reason"].startswith("signature"), bad
        st = get("/v1/uplink/status")
        assert any(a["name"] == "samantha_operator_doc_refused" for a in st["alerts"]), st["alerts"]
        assert get(f"/v1/chaos/approvals/{aid}")["status"] == "pending"

        # ana's approval, relayed: the experiment runs to its end
        ok = decide(aid, "approve", ana_path, "ana", pkey)
        assert ok["status"] == "accepted" and ok["signer"] == ana.public.key_id, ok
        done = wait_for(lambda: (a := get(f"/v1/chaos/approvals/{aid}"))["status"] in ("executed", "refused") and a,
                        150, "the approved experiment finished")
        assert done["status"] == "executed", json.dumps(done, indent=1)[:3000]
        assert done["decision"]["verified"] == {"operator": "ana", "role": "approve", "key_id": ana.public.key_id,
                                                "relayed_by": "hub", "via": "hub"}
        res = done["result"]
        assert res["outcome"] in ("completed", "aborted"), json.dumps(res, indent=1)[:3000]  # aborted: a gate held
        exp = get(f"/v1/chaos/experiments/{res['experiment_id']}")
        assert exp["approval_id"] == aid and exp["state"] == res["outcome"], exp
        [kill] = [i for i in exp["injections"] if i["kind"] == "kill_slot"]
        assert kill["state"] == "reverted", kill
        assert Path(res["journal"]).is_file()
        wait_for(lambda: twin.cube.state().slot("active").healthy, 30, "active slot healthy again")

        # the same signed document relayed again: a replay, refused
        doc = next(x["doc"] for x in httpx.get(f"{hub_url}/v1/cubes/{CUBE}/decisions", timeout=10).json()
                   ["decisions"] if x["doc"]["nonce"] == ok["doc"]["nonce"])
        httpx.post(f"{hub_url}/v1/cubes/{CUBE}/decisions", json=doc, timeout=10).raise_for_status()
        wait_for(lambda: [x for x in get("/v1/uplink/decisions")["decisions"]
                          if x["doc"].get("nonce") == doc["nonce"] and x["status"] == "refused"
                          and "replay" in x["reason"]], 30, "replay refused")

        # a second escalation, denied through the hub: closed, never run
        item2 = escalate()
        no = decide(item2["id"], "deny", ana_path, "ana", item2["proposal"]["key"])
        assert no["status"] == "accepted", no
        closed = wait_for(lambda: (a := get(f"/v1/chaos/approvals/{item2['id']}"))["status"] == "denied" and a, 30,
                          "denied")
        assert (closed.get("result") or {}).get("experiment_id") is None
        assert [e["id"] for e in get("/v1/chaos/experiments")["experiments"]] == [res["experiment_id"]]
        assert httpx.get(f"{d.url}/v1/audit/verify", headers=h, timeout=10).status_code == 200
        assert d.proc is not None and d.proc.poll() is None  # refusals never took the daemon down

    audit = stopped_audit(tmp_path / "state" / "telemetry.duckdb", "kind IN ('operator_doc', 'approval_decided')")
    docs = [p for k, p in audit if k == "operator_doc" and p["kind"] == "samantha/approval-decision"]
    assert [(p["operator"], p["ok"], p["via"]) for p in docs] == [
        ("mallory", False, "relayed by hub"), ("ana", True, "relayed by hub"), ("ana", False, "relayed by hub"),
        ("ana", True, "relayed by hub")], docs
    decided = [p for k, p in audit if k == "approval_decided"]
    assert [(p["approval_id"], p["decision"], p["status"], p["via"]) for p in decided] == [
        (aid, "approve", "executed", "relayed by hub"), (item2["id"], "deny", "denied", "relayed by hub")], decided
