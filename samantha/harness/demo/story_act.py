"""Act: the SRE story on one twin and one real `samantha run` daemon.

1. a good bundle rolls out step by step (weights and gate verdicts, live) to an atomic flip;
2. a bad one (20% errors) is caught at an early step, snapped back and quarantined;
3. the active slot degrades (half its requests fail) and the daemon flips it, confirmed from the
   router's telemetry; the advisory triage lands on the incident after the flip;
4. the fleet recalls the bundle that degraded: a signed Recall published at the embedded NATS hub reaches
   the daemon's uplink, which quarantines it, and the hub's Parquet shows the Cube applied it; a policy
   module then carries a Plan with Constraints, and the Cube says why it waits;
then the audit chain is verified through the daemon's API. Every time printed is measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.live import Live
from rich.table import Table

from samantha.api.client import DaemonError, DaemonNotRunning
from samantha.core.config import SamanthaConfig

TITLE = "The SRE story: a rollout promoted, a bad bundle caught, a degraded slot flipped, a Recall applied"
PORTS = ("router_port", "control_port", "slot_a_port", "slot_b_port", "proxy_api_port", "proxy_a_port",
         "proxy_b_port", "loadgen_port")


def _wait(pred: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except (httpx.HTTPError, DaemonNotRunning, DaemonError):
            pass
        time.sleep(0.15)
    return None


def policy_doc(step_s: float, soak_s: float) -> dict[str, Any]:
    return {"name": "demo", "shadow": {"min_samples": 100, "min_duration": step_s},
            "steps": [{"weight": w, "min_samples": 20, "min_duration": step_s} for w in (1, 5, 25, 50, 100)],
            "soak": soak_s}


def story_config(base: Path, template: SamanthaConfig, *, rps: float, policy: dict[str, Any],
                 hub_url: str | None = None) -> SamanthaConfig:
    """A twin on ephemeral ports pushing into a daemon on a free port, with the given rollout policy (and an
    uplink to `hub_url`, syncing every half second)."""
    from samantha.core.ports import free_port

    port = free_port()
    base.mkdir(parents=True, exist_ok=True)
    (base / "rollout-policy.yaml").write_text(yaml.safe_dump(policy))
    return SamanthaConfig.model_validate({
        "data_dir": str(base / "state"), "api": {"port": port},
        "twin": {**{p: 0 for p in PORTS}, "rps": rps, "ingest_url": f"http://127.0.0.1:{port}/v1/ingest/requests"},
        "sre": {"rollout_policy": str(base / "rollout-policy.yaml"), "rollout_max_step_s": 60,
                "llm_triage": template.sre.llm_triage},
        "llm": template.llm.model_dump(mode="json", exclude_defaults=True),
        **({"uplink": {"hub_url": hub_url, "cube_id": "cube-story", "interval_s": 0.5}} if hub_url else {})})


def _status(client: Any) -> Any:
    from samantha.rollout.record import RolloutStatus

    return RolloutStatus.model_validate(client.get("/v1/rollout/status"))


def _rollout(ctx: Any, client: Any, bundle: str, rid: str, limit_s: float) -> Any:
    from samantha.rollout.view import render

    r = httpx.post(f"{client.base_url}/v1/rollout/start", json={"bundle": bundle, "request_id": rid},
                   headers=client.headers(), timeout=30)
    if r.status_code != 200:
        raise RuntimeError(f"the daemon refused the rollout of {bundle}: {r.text[:300]}")
    deadline = time.monotonic() + limit_s
    st = _status(client)
    with Live(render(st), console=ctx.console, refresh_per_second=8) as live:
        while time.monotonic() < deadline and st.phase not in ("promoted", "aborted", "failed"):
            time.sleep(0.1)
            st = _status(client)
            live.update(render(st))
    return st


def _slots(st: dict[str, Any], note: str) -> Table:
    t = Table(title=note)
    for col in ("slot", "role", "bundle", "healthy", "weight"):
        t.add_column(col)
    for s in st.get("slots") or []:
        t.add_row(s["name"], s["role"], str(s.get("bundle_id"))[:12], "yes" if s["healthy"] else "[red]no[/red]",
                  f"{(st.get('weights') or {}).get(s['role'], 0):g}%")
    t.caption = f"failing gates: {', '.join(st.get('failing') or []) or 'none'}   actions: {st.get('actions')}"
    return t


def _measure(client: Any, fault: dict[str, Any], t0: float) -> dict[str, Any]:
    """From the daemon's records (its admin export): the daemon goes on running for the next step."""
    from samantha.harness.scenario_run import measure_live

    now = time.time()
    return measure_live(client.base_url, client.headers(), [fault], t0, now - t0, now)["faults"][0]


def run(ctx: Any) -> None:
    from samantha.core.signing import KeyPair, trust_public_key
    from samantha.harness.hub_process import spawn_nats_hub

    step_s, soak_s = (0.5, 1.0) if ctx.fast else (2.0, 5.0)
    base = ctx.workdir / "story"
    with spawn_nats_hub(base / "hub") as hub:  # the fleet's root, for the Recall of chapter 4
        cfg = story_config(base, ctx.config, rps=150 if ctx.fast else 200, policy=policy_doc(step_s, soak_s),
                           hub_url=hub.value)
        hub_key = KeyPair.generate()
        trust_public_key(hub_key.public, cfg.resolve(cfg.uplink.hub_keys))
        _story(ctx, cfg, hub.value, hub_key, base, step_s, soak_s)


def _story(ctx: Any, cfg: SamanthaConfig, hub_url: str, hub_key: Any, base: Path, step_s: float,
           soak_s: float) -> None:
    from samantha.cube.bundle import SigningKey
    from samantha.cube.client import CubeClient
    from samantha.cube.fault_profile import FaultProfile
    from samantha.cube.protocol import CubeError
    from samantha.harness.daemon_process import DaemonProcess, write_config
    from samantha.twin import lifecycle
    from samantha.twin.supervisor import GOOD_BUNDLE
    from samantha.twin.toy_bundle import build_bundle

    con = ctx.console
    con.print("starting the twin and `samantha run` (shipped playbooks; rollout policy: shadow, 1/5/25/50/100 %, "
              f"{step_s:g} s per step, soak {soak_s:g} s; uplink to the embedded NATS hub at {hub_url}) ...")
    st = lifecycle.up(cfg)
    cube = CubeClient(lifecycle.control_url(st))
    try:
        with DaemonProcess(cfg, write_config(cfg, base / "samantha.yaml"), log=base / "daemon.log") as daemon:
            daemon.start().wait_ready(90, verdicts=True)
            client = daemon.client
            con.print(_slots(client.status(), "healthy Cube, governed by the daemon"))
            key = SigningKey.load(st["signing_key"])
            bdir = Path(st["bundles_dir"])
            good = build_bundle(bdir / "v2", name="sensor-mlp", version="2", seed=0, key=key)
            bad = build_bundle(bdir / "v3-bad", name="sensor-mlp", version="3", seed=0, key=key,
                               profile=FaultProfile(error_rate=0.2))

            # 1. a good bundle, step by step
            con.print(f"[bold]1.[/bold] rolling out [bold]{good.label}[/bold] ({good.bundle_id[:12]})")
            s1 = _rollout(ctx, client, "v2", "demo-good", 120)
            if s1.phase != "promoted":
                raise RuntimeError(f"the good rollout ended {s1.phase}: {s1.rollout.reason if s1.rollout else ''}")
            con.print(f"[green]promoted[/green]: active slot {cube.state().active} runs {good.label}; the old bundle "
                      f"stays in standby as last-known-good ({s1.rollout.last_known_good[:12]})")

            # 2. a bad bundle, caught early
            con.print(f"[bold]2.[/bold] rolling out [bold]{bad.label}[/bold] ({bad.bundle_id[:12]}: fails 20% "
                      "of inferences)")
            t_bad = time.time()
            s2 = _rollout(ctx, client, "v3-bad", "demo-bad", 90)
            # either judge may call it first: the rollout's own step gate, or the daemon's bad-canary playbook
            if s2.phase != "aborted" or not _wait(lambda: cube.state().is_quarantined(bad.bundle_id), 10):
                raise RuntimeError(f"the bad rollout was not caught: {s2.phase} "
                                   f"{s2.rollout.reason if s2.rollout else ''}")
            decisions = s2.rollout.decisions
            k = next(i for i, d in enumerate(decisions) if d.kind == "weights" and d.corrective)
            before = [d for d in decisions[:k] if d.kind in ("weights", "shadow_on")]
            where = ("shadow scoring (no user saw it)" if not before or before[-1].kind == "shadow_on"
                     else before[-1].reason.split(":")[0] + f" ({s2.rollout.steps[s2.rollout.step]:g}%)")
            time.sleep(1.2)  # the router's last batches land; `mitigated` needs a quiet second after the last request
            m = _measure(client, {"kind": "bad_bundle", "onset_s": 0.0, "bundle_id": bad.bundle_id}, t_bad)
            con.print(f"[red]caught[/red] at {where} by {s2.rollout.reason}")
            con.print(f"detected {m['ttd_s']} s after its first request, weights back in "
                      f"{decisions[k].duration_ms:.0f} ms, traffic off it {m['ttm_s']} s after its first request, "
                      "bundle quarantined by hash")
            try:
                cube.load(str(bdir / "v3-bad"), request_id="demo-reload")
                raise RuntimeError("a quarantined bundle was loaded again")
            except CubeError as e:
                con.print(f"loading it again is refused: {e}")
            ctx.facts["rollout: good bundle promoted in s"] = round(s1.rollout.ended_at - s1.rollout.started_at, 1)
            ctx.facts["rollout: bad bundle time to detect s"] = m["ttd_s"]
            ctx.facts["rollout: bad bundle time to traffic-off s"] = m["ttm_s"]

            # 3. the active slot degrades; the daemon flips to the last-known-good standby
            cube.load(str(bdir / GOOD_BUNDLE), request_id="demo-restore-lkg")
            if not _wait(lambda: all(s["healthy"] for s in client.status()["cube"]["slots"]), 20):
                raise RuntimeError("the standby did not come back healthy with the last-known-good bundle")
            con.print(_slots(client.status(), "standby back on the last-known-good bundle"))
            slot = client.status()["cube"]["active"]
            time.sleep(1.0)  # a healthy baseline for the steady-state gates
            onset = time.time()
            httpx.post(f"{lifecycle.slot_url(st, slot)}/degrade", json={"error_rate": 0.5}, timeout=5).raise_for_status()
            con.print(f"[bold]3.[/bold] [yellow]slot {slot} (active) now fails 50% of requests[/yellow]")
            flip = None
            with Live(_slots(client.status(), "watching"), console=con, refresh_per_second=8) as live:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and flip is None:
                    live.update(_slots(client.status(), f"t+{time.time() - onset:.1f}s"))
                    done = [a for a in client.actions(kind="flip") if a["status"] in ("verified", "failed")
                            and a["created_ts"] >= onset]
                    flip = done[0] if done else None
                    time.sleep(0.15)
            if flip is None or flip["status"] != "verified":
                raise RuntimeError(f"no verified flip within 30 s: {flip}")
            detect, mitigate = flip["created_ts"] - onset, (flip["done_ts"] or flip["created_ts"]) - onset
            confirmed = (flip["verified_ts"] or 0) - onset
            con.print(_slots(client.status(), f"flip {flip['status']}"))
            ev = flip["result"].get("verification", {})
            con.print(f"decided at t+{detect:.2f}s (playbook {flip['playbook']}), traffic switched at "
                      f"t+{mitigate:.2f}s, confirmed from router telemetry at t+{confirmed:.2f}s "
                      f"({ev.get('method')}: error rate {ev.get('before', {}).get('error_rate', 0):.2f} -> "
                      f"{ev.get('after', {}).get('error_rate', 0):.2f})")
            ctx.facts["flip: decided s"] = round(detect, 2)
            ctx.facts["flip: traffic switched s"] = round(mitigate, 2)
            ctx.facts["flip: confirmed from telemetry s"] = round(confirmed, 2)

            # the summary is code-written from the evidence once the flip is verified; triage (the rules'
            # cause, verified LLM text if any) arrives after the action, never before it or in its way
            inc = _wait(lambda: (i := client.get(f"/v1/incidents/{flip['incident_id']}")) and "verified"
                        in (i.get("summary") or "") and i.get("cause") and i, 30 if ctx.fast else 90)
            if inc:
                tri = inc.get("triage") or {}
                after = inc["updated_ts"] - (flip["done_ts"] or 0)
                con.print(f"incident {inc['id']} [{inc['severity']}]: {inc['summary']}", markup=False)
                con.print(f"cause {inc['cause']} ({tri.get('method')}), +{after:.1f} s after the flip", markup=False)
                if tri.get("advisory"):
                    con.print(f"  advisory (LLM, every claim checked): {tri['advisory']}", markup=False)
                elif tri.get("rejected"):
                    con.print(f"  LLM text refused by the verifier, not shown: {'; '.join(tri['rejected'])[:200]}",
                              markup=False)
                opened = [i for i in client.incidents() if i["opened_ts"] >= onset - 1]
                con.print(f"incidents opened by this fault: {len(opened)} (one per fault: the new active's "
                          f"gates judge only its own requests)")
                ctx.facts["incidents for the one fault"] = len(opened)
                ctx.facts["triage: after the flip s"] = round(after, 1)
            else:
                con.print(f"incident {flip['incident_id']}: summary not in yet (bounded wait over; the flip stands)")

            _recall(ctx, client, cube, hub_url, hub_key, base / "hub", good)
            _plan(ctx, client, hub_url, hub_key)

            audit = client.get("/v1/audit/verify")
            con.print(f"audit log (GET /v1/audit/verify): {audit['count']} signed records, chain "
                      f"{'intact' if audit['ok'] else 'BROKEN'}")
            if not audit["ok"]:
                raise RuntimeError(f"audit chain broken: {audit}")
            ctx.facts["audit records verified"] = audit["count"]
    finally:
        cube.close()
        out = lifecycle.down(cfg)
        con.print(f"twin down: {'no process left' if not out.get('left') else out['left']}")


def _recall(ctx: Any, client: Any, cube: Any, hub_url: str, hub_key: Any, hub_root: Path, bundle: Any) -> None:
    """4. The fleet recalls the bundle whose slot degraded: signed at the hub, applied by the daemon's uplink
    (the kernel's steps: here it is the standby, so a quarantine), reported up, shown by `hub recall-status`."""
    import secrets

    from samantha.hub import nats_ops
    from samantha.hub.recall_status import recall_status
    from samantha.hub.storage import HubStorage
    from samantha.uplink.recall import RECALL_KIND, sign_recall

    con = ctx.console
    t0 = time.time()
    doc = sign_recall({"kind": RECALL_KIND, "bundle_id": bundle.bundle_id, "nonce": secrets.token_hex(12),
                       "issued_at": t0, "operator": "fleet-sre", "reason": "degraded on a Cube"}, hub_key)
    nats_ops.publish_recall(hub_url, doc)
    where = "active" if cube.state().slot("active").bundle_id == bundle.bundle_id else "standby"
    con.print(f"[bold]4.[/bold] the fleet recalls [bold]{bundle.label}[/bold] ({bundle.bundle_id[:12]}, the "
              f"{where} bundle here): `samantha hub recall`, signed with the hub key")
    if not _wait(lambda: cube.state().is_quarantined(bundle.bundle_id), 15):
        raise RuntimeError(f"the recall was not applied: {client.get('/v1/uplink/status').get('recalls')}")
    applied = _wait(lambda: client.get("/v1/uplink/status")["recalls"], 5)[0]

    def at_hub() -> Any:
        hs = HubStorage(hub_root)
        try:
            return (s := recall_status(hs, bundle.bundle_id))["applied"] and s
        finally:
            hs.close()

    shown = _wait(at_hub, 15)
    actions = ", ".join(f"{a['kind']} {a['status']}" for a in applied["outcome"]["actions"])
    con.print(f"the Cube verified it and applied it {applied['applied_at'] - t0:.2f} s after it was published "
              f"({actions}, through the daemon's action path and the safety kernel); hub recall-status: "
              + (f"applied by {', '.join(a['cube'] for a in shown['applied'])} "
                 f"({time.time() - t0:.1f} s after publishing)" if shown else "not in the hub's Parquet yet"))
    ctx.facts["recall: applied after publish s"] = round(applied["applied_at"] - t0, 2)


def _plan(ctx: Any, client: Any, hub_url: str, hub_key: Any) -> None:
    """A policy module with a Plan whose Constraints do not hold yet: the Cube says why it waits."""
    from datetime import UTC, datetime

    from samantha.hub import nats_ops
    from samantha.uplink.policy_module import sign_module

    now = time.time()

    def hms(ts: float) -> str:
        return datetime.fromtimestamp(ts, UTC).strftime("%H:%M")

    window = {"start": hms(now + 2 * 3600), "end": hms(now + 3 * 3600)}
    module = sign_module({"version": 1, "issued_at": now - 60, "expires_at": now + 3600, "fleet": "demo",
                          "plans": [{"id": "roll-v4", "bundle": "v4", "constraints": {
                              "window": window, "min_samantha_version": "0.2.0"}}]}, hub_key)
    nats_ops.publish_policy(hub_url, "fleet", module)
    p = _wait(lambda: next((x for x in client.status()["plans"] if x["status"] == "waiting"), None), 10)
    if p is None:
        raise RuntimeError(f"the Plan was not evaluated: {client.get('/v1/uplink/status').get('last_offer')}")
    ctx.console.print(f"policy module v1 carries Plan {p['id']} (roll out v4 in {window['start']}-{window['end']} "
                      f"UTC, Samantha >= 0.2.0); the Cube waits and says why: " + "; ".join(p["waiting"]),
                      highlight=False)
