"""Chaos mode inside the daemon (`samantha run`) on a real twin: SIGKILL mid-experiment leaves no fault
once the daemon restarts (the ledger is recovered before it serves), SIGTERM reverts before it exits,
and the chaos API sits behind operator auth."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from samantha.api.client import auth_headers
from samantha.chaos.service import leftovers
from samantha.core.operators import add_operator
from samantha.harness.daemon_process import DaemonProcess
from tests.sre.kit import twin_and_daemon, wait_for

LATENCY = {"kind": "latency", "target": "standby", "params": {"latency_ms": 300, "duration_s": 60}}


def _inject(d: DaemonProcess, headers: dict[str, str]) -> threading.Thread:
    wait_for(lambda: httpx.post(f"{d.url}/v1/chaos/preflight", json=LATENCY, headers=headers, timeout=30)
             .json()["verdict"] == "sanctioned", 90, "latency sanctioned", interval=0.5)

    def run() -> None:
        with contextlib.suppress(Exception):  # the daemon goes away under this request on purpose
            httpx.post(f"{d.url}/v1/chaos/run", json={"proposal": LATENCY}, headers=headers, timeout=120)

    t = threading.Thread(target=run, daemon=True)
    t.start()

    def injected() -> bool:
        led = httpx.get(f"{d.url}/v1/chaos/ledger", params={"open_only": True}, headers=headers, timeout=10).json()
        return any(e["kind"] == "latency" and e["state"] == "active" for e in led["injections"])

    wait_for(injected, 30, "latency injected")
    return t


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_daemon_recovers_the_chaos_ledger_and_reverts_on_sigterm(tmp_path: Path) -> None:
    with twin_and_daemon(tmp_path, chaos={"probe_interval_s": 0.3}) as (_twin, d):
        cfg = d.config
        admin = auth_headers(cfg)
        viewer = {"Authorization": "Bearer " + (add_operator(cfg.resolve(cfg.api.operators_file), "vera", "viewer")
                                                or "")}
        # auth: no token 401, a viewer reads and may ask the gates but not run, approve or self-test
        assert httpx.get(f"{d.url}/v1/chaos/plan", timeout=10).status_code == 401
        assert httpx.get(f"{d.url}/v1/chaos/experiments", headers=viewer, timeout=10).status_code == 200
        assert httpx.post(f"{d.url}/v1/chaos/gates", json={"names": ["host-memory"]}, headers=viewer,
                          timeout=30).status_code == 200
        for path, body in (("/v1/chaos/run", {"proposal": LATENCY}), ("/v1/chaos/selftest", None),
                           ("/v1/chaos/approvals/apr-x/approve", {})):
            r = httpx.post(f"{d.url}{path}", json=body, headers=viewer, timeout=10)
            assert r.status_code == 403, (path, r.text)
        assert all(v == "ok" for v in httpx.post(f"{d.url}/v1/chaos/selftest", headers=admin, timeout=120)
                   .json()["results"].values())

        t = _inject(d, admin)
        assert leftovers(cfg)["toxics"]  # the fault is really in
        assert d.proc is not None
        d.proc.kill()  # SIGKILL: no rollback runs; the runner dies with it (PDEATHSIG)
        d.proc.wait(10)
        t.join(10)
        d.start().wait_ready()  # start-up recovers the ledger before the API answers
        left = leftovers(cfg)
        assert left["total"] == 0, left
        led: dict[str, Any] = httpx.get(f"{d.url}/v1/chaos/ledger", headers=auth_headers(cfg), timeout=10).json()
        assert led["injections"] and all(e["state"] != "active" for e in led["injections"])
        assert any(r["kind"] == "latency" and r["reverted"] for r in led["recovery"]["reverted"]), led["recovery"]

        t = _inject(d, auth_headers(cfg))
        assert leftovers(cfg)["toxics"]
        assert d.stop(40) == 0, d.tail()  # SIGTERM mid-experiment: a clean exit ...
        t.join(10)
        left = leftovers(cfg)
        assert left["total"] == 0, left  # ... with the fault reverted before it
