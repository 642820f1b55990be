"""Native Chaos Toolkit experiments, run for real: a real twin (its slot proxies), a real daemon, the real chaoslib
runner and chaostoolkit-toxiproxy's own actions against the Cube's proxies. One Cube serves the module's tests,
in file order: the 200 ms run last, because the standby's latency gate takes a while to settle after it."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from samantha.chaos.approvals import make_decision
from samantha.core.operators import add_operator
from samantha.core.signing import KeyPair
from samantha.cube.endpoints import cube_endpoints
from samantha.cube.proxy_client import ProxyClient
from tests.chaos.kit import chaos_env, wait_for

NATIVE = Path(__file__).resolve().parents[2] / "experiments" / "native"


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("native")
    with chaos_env(tmp) as (twin, host):
        # a revert path exercised on this Cube is a pre-flight condition of every kind (rule revert-tested)
        assert all(v == "ok" for v in host.post("/v1/chaos/selftest").json()["results"].values())
        yield twin, host, tmp


def _cli(host, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "samantha", "chaos", *args, "-c", str(host.config_path)],
                          capture_output=True, text=True, timeout=timeout)


def _toxics(proxy_url: str) -> dict[str, list[str]]:
    with ProxyClient(proxy_url, timeout=3.0) as c:
        return {name: [t.name for t in info.toxics] for name, info in c.proxies().items()}


def _held_by_gates(out: dict) -> bool:
    """Refused only because a gate fails now (the steady state an earlier run, or this busy host, disturbed):
    nothing ran, so asking again once the Cube is steady is safe."""
    rejects = [r for r in (out.get("preflight") or {}).get("reasons", []) if r["severity"] == "reject"]
    return out.get("outcome") == "rejected" and bool(rejects) and all(r["code"] == "gate-failing" for r in rejects)


def _until_steady(submit, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        out = submit()
        if not _held_by_gates(out) or time.monotonic() > deadline:
            return out
        time.sleep(1.0)


def _submit(host, name: str, text: str | None = None) -> dict:
    def once() -> dict:
        r = host.post("/v1/chaos/experiments/native", json={"document": text or (NATIVE / name).read_text(),
                                                             "source": name}, timeout=120)
        assert r.status_code == 200, r.text
        return r.json()
    return _until_steady(once)


@pytest.mark.timeout(60)
def test_unknown_provider_is_escalated_into_the_queue_and_never_run(cube):
    _, host, _ = cube
    before = {e["id"] for e in host.get("/v1/chaos/experiments")["experiments"]}
    dry = host.post("/v1/chaos/experiments/native/preflight",
                    json={"document": (NATIVE / "unknown-provider.yaml").read_text(), "source": "u.yaml"}).json()
    assert dry["verdict"] == "escalate" and host.get("/v1/chaos/approvals")["approvals"] == []  # dry: queues nothing
    out = _submit(host, "unknown-provider.yaml")
    assert out["outcome"] == "escalated" and out["preflight"]["verdict"] == "escalate"
    [reason] = out["preflight"]["reasons"]
    assert reason["code"] == "unclassified:method[0]" and "chaosmystery.actions" in reason["message"], reason
    aid = out["approval"]["id"]
    item = host.get(f"/v1/chaos/approvals/{aid}")
    assert item["status"] == "pending" and item["proposal"]["kind"] == "native_experiment"
    assert "does not exist" in item["preflight"]["reasons"][0]["message"]
    assert {e["id"] for e in host.get("/v1/chaos/experiments")["experiments"]} == before  # nothing ran
    assert host.get("/v1/chaos/ledger", params={"open_only": True})["injections"] == []


@pytest.mark.timeout(60)
def test_a_malformed_document_is_refused_with_its_line_by_the_cli_and_the_api(cube, tmp_path):
    _, host, _ = cube
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1.0.0\ntitle: t\ndescription: d\nmethod:\n  - type: action\n    name: no-provider\n")
    r = _cli(host, "run", str(bad))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert f"{bad}:5:" in r.stderr and "method[0]" in r.stderr, r.stderr
    r = _cli(host, "run", str(bad), "--json")
    assert r.returncode == 2 and json.loads(r.stdout)["problems"][0]["line"] == 5, r.stdout
    api = host.post("/v1/chaos/experiments/native", json={"document": bad.read_text(), "source": "bad.yaml"})
    err = api.json()["error"]
    assert api.status_code == 422 and err["line"] == 5 and err["field"] == "method[0]", api.text
    anon = httpx.post(f"{host.url}/v1/chaos/experiments/native", json={"document": "{}"}, timeout=10)
    assert anon.status_code == 401, anon.text  # the same auth as every chaos route


@pytest.mark.timeout(150)
def test_active_timeout_is_escalated_with_the_blast_radius_reason_and_runs_once_approved(cube):
    twin, host, tmp = cube
    out = _submit(host, "active-timeout-toxiproxy.yaml")
    assert out["outcome"] == "escalated", json.dumps(out)[:2000]
    codes = {r["code"]: r for r in out["preflight"]["reasons"]}
    assert "active-share" in codes and "active-timeout" in codes["active-share"]["message"], codes
    aid, key = out["approval"]["id"], out["approval"]["proposal"]["key"]
    assert host.get("/v1/chaos/ledger", params={"open_only": True})["injections"] == []  # not run

    alice = KeyPair.generate()
    add_operator(Path(host.config.data_dir) / "operators.yaml", "alice", "approver", alice.public,
                 time.time() + 3600)
    other = make_decision(aid, "approve", "prop-0000000000000000", alice, operator="alice", now=time.time())
    r = host.post(f"/v1/chaos/approvals/{aid}/approve", json=other)  # signed for another document: refused
    assert r.status_code == 422 and r.json()["error"]["code"] == "wrong_proposal", r.text
    r = host.post(f"/v1/chaos/approvals/{aid}/approve",
                  json=make_decision(aid, "approve", key, alice, operator="alice", now=time.time()))
    assert r.status_code == 200, r.text
    res = r.json()["result"]
    assert res["outcome"] in ("completed", "aborted", "failed"), json.dumps(res)[:3000]  # it ran, judged again
    assert r.json()["approval"]["status"] == "executed"
    [inj] = res["injections"]
    assert inj["kind"] == "timeout" and inj["state"] == "reverted" and res["left_on_proxy"] == []
    exp = host.get(f"/v1/chaos/experiments/{res['experiment_id']}")
    assert exp["approval_id"] == aid and exp["target"] == "active"


@pytest.mark.timeout(150)
def test_a_daemon_killed_mid_run_leaves_no_toxic_after_restart(cube, tmp_path):
    """It kills the shared daemon and restarts it; its latency is 1 ms, so the steady state holds for the next."""
    _, host, _ = cube
    proxy_url = cube_endpoints(host.config).proxy_url
    text = (NATIVE / "standby-latency-toxiproxy.yaml").read_text().replace("pauses: {after: 3}", "pauses: {after: 60}")
    text = text.replace("latency: 200, jitter: 20", "latency: 1, jitter: 0")
    t = threading.Thread(target=_swallow, args=(host, text), daemon=True)
    t.start()
    wait_for(lambda: "native-latency" in _toxics(proxy_url).get("slot-b", []), 30, "the toxic on slot-b")
    [entry] = host.get("/v1/chaos/ledger", params={"open_only": True})["injections"]  # written before it went in
    assert entry["kind"] == "latency" and entry["state"] == "intent"
    host.kill()  # SIGKILL: no rollback runs; the runner dies with the daemon (PDEATHSIG)
    t.join(10)
    host.start().wait_ready()  # start-up reverts every open ledger entry before it serves
    assert all(v == [] for v in _toxics(proxy_url).values())
    rec = host.get("/v1/chaos/ledger")["recovery"]
    assert any(r["id"] == entry["id"] and r["reverted"] for r in rec["reverted"]), rec
    [exp] = [e for e in host.get("/v1/chaos/experiments")["experiments"] if e["id"] == entry["experiment_id"]]
    assert exp["state"] == "crashed"


@pytest.mark.timeout(150)
def test_standby_latency_is_sanctioned_run_by_chaoslib_reverted_on_the_proxy_and_journaled(cube):
    twin, host, _ = cube
    proxy_url = cube_endpoints(host.config).proxy_url
    standby_proxy = "slot-" + twin.cube.state().slot("standby").name.lower()
    assert standby_proxy == "slot-b"  # the shipped document names the twin's standby proxy
    seen: list[list[str]] = []
    done = threading.Event()

    def watch() -> None:  # the toxic really sits on the Cube's standby proxy while the document holds it
        while not done.is_set():
            seen.append(_toxics(proxy_url).get(standby_proxy, []))
            time.sleep(0.2)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    runs: list[subprocess.CompletedProcess] = []

    def run_cli() -> dict:
        runs.append(_cli(host, "run", str(NATIVE / "standby-latency-toxiproxy.yaml"), "--json"))
        return json.loads(runs[-1].stdout)

    try:
        out = _until_steady(run_cli)
    finally:
        done.set()
        t.join(5)
    assert runs[-1].returncode == 0, (runs[-1].stdout[-3000:], runs[-1].stderr[-3000:])
    assert out["outcome"] == "completed" and out["preflight"]["verdict"] == "sanctioned", json.dumps(out)[:3000]
    assert ["native-latency"] in seen, seen
    assert out["left_on_proxy"] == [] and all(v == [] for v in _toxics(proxy_url).values())  # reverted, on the proxy
    [inj] = out["injections"]  # one ledger entry, with its TTL, for the one classified injection
    assert inj["kind"] == "latency" and inj["state"] == "reverted" and inj["injected_at"] < inj["reverted_at"]
    exp = host.get(f"/v1/chaos/experiments/{out['experiment_id']}")
    assert exp["state"] == "completed" and exp["kind"] == "latency" and exp["target"] == "standby"
    [entry] = exp["injections"]
    assert entry["params"]["latency_ms"] == 200 and entry["revert"]["op"] == "remove_toxic"
    assert entry["expires_at"] > entry["created_at"]
    journal = json.loads(Path(out["journal"]).read_text())
    assert exp["journal_sha256"] == out["journal_sha256"] and journal["status"] == "completed"
    [act] = journal["run"]
    assert act["activity"]["provider"]["func"] == "create_latency_toxic" and act["status"] == "succeeded"
    assert journal["rollbacks"][0]["activity"]["provider"]["func"] == "delete_toxic"
    assert journal["rollbacks"][0]["status"] == "succeeded"
    # the document ran against the Cube's proxy API, not the address the file carried (8474)
    assert journal["experiment"]["configuration"]["toxiproxy_url"] == proxy_url.rstrip("/")
    assert any(f["kind"] == "held" for f in out["findings"]), out["findings"]


def _swallow(host, text: str) -> None:
    with contextlib.suppress(Exception):  # the daemon is killed under this request on purpose
        _submit(host, "long.yaml", text)
