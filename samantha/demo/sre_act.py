"""Act: the daemon governs the twin. The active slot starts failing; Samantha flips it to the
standby within about a second, confirms from the router's telemetry that traffic left it, opens
an incident with advisory triage, and signs every decision into the audit log."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import yaml
from rich.live import Live
from rich.table import Table

from samantha.api.client import DaemonClient, DaemonNotRunning
from samantha.config import SamanthaConfig
from samantha.twin import lifecycle

TITLE = "The daemon: an active slot degrades and is flipped"
PORTS = ("router_port", "control_port", "slot_a_port", "slot_b_port", "proxy_api_port", "proxy_a_port",
         "proxy_b_port", "loadgen_port")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _view(st: dict[str, Any], note: str) -> Table:
    t = Table(title=note)
    for col in ("slot", "role", "bundle", "healthy", "weight"):
        t.add_column(col)
    for s in st.get("slots") or []:
        t.add_row(s["name"], s["role"], str(s.get("bundle_id"))[:12], "yes" if s["healthy"] else "[red]no[/red]",
                  f"{(st.get('weights') or {}).get(s['role'], 0):g}%")
    failing = ", ".join(st.get("failing") or []) or "none"
    t.caption = f"failing gates: {failing}   actions: {st.get('actions')}"
    return t


def _wait(pred: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except (httpx.HTTPError, DaemonNotRunning):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def run(ctx: Any) -> None:
    con = ctx.console
    port = _free_port()
    base = ctx.workdir / "sre"
    cfg = SamanthaConfig.model_validate({
        "data_dir": str(base / "state"), "api": {"port": port},
        "twin": {**{p: 0 for p in PORTS}, "rps": 100 if ctx.fast else 200,
                 "ingest_url": f"http://127.0.0.1:{port}/v1/ingest/requests"}})
    path = base / "samantha.yaml"
    base.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude_defaults=True)))
    con.print("starting the twin and `samantha run` (shipped playbooks, no LLM on the fast path) ...")
    st = lifecycle.up(cfg)
    proc = None
    try:
        with (base / "daemon.log").open("ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "samantha", "run", "-c", str(path)], stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=os.environ.copy())
        client = DaemonClient(f"http://127.0.0.1:{port}", timeout=10, token_file=base / "state" / "api.token")
        _wait(lambda: proc.poll() is None and client.status()["verdicts"], 90, "the daemon's first verdicts")
        con.print(_view(client.status(), "healthy Cube"))
        slot = client.status()["cube"]["active"]
        onset = time.time()
        r = httpx.post(f"{lifecycle.slot_url(st, slot)}/degrade", json={"error_rate": 0.6}, timeout=5)
        r.raise_for_status()
        con.print(f"[yellow]slot {slot} (active) now answers 60% of requests with HTTP 500[/yellow]")
        flip = None
        with Live(_view(client.status(), "watching"), console=con, refresh_per_second=8) as live:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                s = client.status()
                live.update(_view(s, f"t+{time.time() - onset:.1f}s"))
                done = [a for a in client.actions(kind="flip") if a["status"] in ("verified", "failed")]
                if done:
                    flip = done[0]
                    break
                time.sleep(0.15)
        if flip is None:
            raise RuntimeError("no flip within 30 s")
        detect, mitigate = flip["created_ts"] - onset, (flip["done_ts"] or flip["created_ts"]) - onset
        confirmed = (flip["verified_ts"] or 0) - onset
        con.print(_view(client.status(), f"flip {flip['status']}"))
        ev = flip["result"].get("verification", {})
        con.print(f"decision at t+{detect:.2f}s (playbook {flip['playbook']}), traffic switched at "
                  f"t+{mitigate:.2f}s, confirmed from router telemetry at t+{confirmed:.2f}s "
                  f"({ev.get('method')}: error rate {ev.get('before', {}).get('error_rate', 0):.2f} -> "
                  f"{ev.get('after', {}).get('error_rate', 0):.2f})")
        inc = _wait(lambda: (i := client.get(f"/v1/incidents/{flip['incident_id']}")) and i.get("summary") and i, 90,
                    "the advisory triage")
        tri = inc.get("triage") or {}
        con.print(f"incident {inc['id']} [{inc['severity']}]: gates {', '.join(inc['gates'])}")
        con.print(f"triage by {tri.get('method')} (async, advisory) +{inc['updated_ts'] - (flip['done_ts'] or 0):.1f} s "
                  f"after the flip: cause {inc['cause']}; {inc['summary'][:200]}", markup=False)
        ctx.facts["sre_triage_after_flip_s"] = round(inc["updated_ts"] - (flip["done_ts"] or 0), 1)
        audit = client.get("/v1/audit/verify")
        con.print(f"audit log: {audit['count']} signed records, chain {'intact' if audit['ok'] else 'BROKEN'}")
        ctx.facts["sre_flip_decided_s"] = round(detect, 2)
        ctx.facts["sre_flip_mitigated_s"] = round(mitigate, 2)
        ctx.facts["sre_flip_confirmed_s"] = round(confirmed, 2)
        client.close()
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        lifecycle.down(cfg)
