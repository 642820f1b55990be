"""Act: a chaos round. Proposals with verdicts; one sanctioned run with its finding; the new gate; an
escalation waiting in the approval queue, with the exact command to approve it."""

from __future__ import annotations

import time
from pathlib import Path

TITLE = "Chaos: plan, pre-flight, run, learn a gate, escalate to a human"
WORKDIR = "chaos-act"  # under ctx.workdir; the uplink act decides the escalation left waiting here
LEARN = """title: standby path latency 200 ms (learn)
target: standby
fault: {kind: latency, latency_ms: 200, jitter_ms: 20, duration_s: %s}
"""


def run(ctx) -> None:
    from rich.table import Table

    from samantha.core.operators import add_operator
    from samantha.core.signing import KeyPair
    from samantha.harness.bench.chaos import chaos_daemon_config
    from samantha.harness.daemon_process import DaemonProcess, write_config
    from samantha.twin import lifecycle

    work = ctx.workdir / WORKDIR
    work.mkdir(parents=True, exist_ok=True)
    cfg = chaos_daemon_config(work, probe_interval_s=0.3)
    cfg_path = write_config(cfg, (work / "samantha.yaml").absolute())
    c = ctx.console
    lifecycle.up(cfg)  # first: the daemon finds the Cube through the twin's state file
    try:
        with DaemonProcess(cfg, cfg_path, log=work / "daemon.log") as daemon:
            daemon.start().wait_ready().wait_requests()
            st = daemon.post("/v1/chaos/selftest").json()["results"]
            c.print(f"revert paths self-tested on this Cube: {sum(v == 'ok' for v in st.values())}/{len(st)} ok")
            plan = daemon.get("/v1/chaos/plan")
            t = Table("verdict", "proposal", "why not (pre-flight)")
            for p in plan["proposals"][: 8 if ctx.fast else 16]:
                pr = p["proposal"]
                t.add_row(p["verdict"], f"{pr['kind']} on {pr['target']}",
                          ", ".join(r["code"] for r in p["reasons"]) or "-")
            c.print(t)
            c.print(f"{len(plan['proposals'])} proposals from the dependency map: {plan['counts']}")

            learn = {"template": LEARN % (6 if ctx.fast else 12), "source": "demo"}
            exp = daemon.post("/v1/chaos/export", json=learn).json()
            doc_path = work / "standby-latency-learn.ctk.json"
            doc_path.write_text(__import__("json").dumps(exp["experiment"], indent=2))
            c.print(f"exported as a Chaos Toolkit document ({len(exp['experiment']['method'])} method steps, "
                    f"{len(exp['experiment']['steady-state-hypothesis']['probes'])} hypothesis probes, pre-flight "
                    f"now {exp['verdict']}): {doc_path}; `chaos validate` accepts it as it is", highlight=False)
            out = daemon.post("/v1/chaos/run", json=learn).json()
            c.print(f"ran [bold]{out['experiment_id']}[/bold] in a Chaos Toolkit subprocess: {out['outcome']}; "
                    f"journal {out['journal_sha256'][:12]}…; injections "
                    + ", ".join(f"{i['kind']}={i['state']}" for i in out["injections"]), highlight=False)
            for f in out["findings"]:
                c.print(f"  finding: [bold]{f['text']}[/bold]", highlight=False)
            for g in out["learned_gates"]:
                p = g["provenance"]
                c.print(f"  new gate [green]{g['name']}[/green]: {g['spec']['slot']} p99 <= {g['spec']['value']} ms "
                        f"over {g['spec']['window']:g} s — learned from {p['experiment_id']} (journal "
                        f"{p['journal_sha256'][:12]}…, v{p['version']}); queued upward for the hub", highlight=False)
            ctx.facts["chaos findings"] = [f["text"] for f in out["findings"]]
            left = daemon.get("/v1/chaos/leftovers")
            c.print(f"faults left on the Cube after the run: {left['total']}")

            kill = {"kind": "kill_slot", "target": "active", "params": {"duration_s": 20}}
            t0 = time.monotonic()
            while time.monotonic() - t0 < 30:  # the new gate still sees the run's fault in its window
                pre = daemon.post("/v1/chaos/preflight", json=kill).json()
                if pre["verdict"] != "reject":
                    break
                time.sleep(1)
            held = [r["message"] for r in pre["reasons"] if r["code"] == "gate-failing"]
            c.print(f"the new gate kept chaos on hold for {time.monotonic() - t0:.0f} s after the run"
                    + (f" (still: {held[0]})" if held else ""), highlight=False)
            _native_verdicts(ctx, daemon)
            esc = daemon.post("/v1/chaos/run", json={"proposal": kill}).json()
            aid = esc["approval"]["id"]
            c.print(f"proposal kill the active slot: {esc['outcome']} — "
                    + "; ".join(f"[{r['code']}] {r['message']}" for r in esc["preflight"]["reasons"]), markup=False,
                    highlight=False)
            _console_brief(ctx, daemon, aid)
            _native_run(ctx, daemon)
            key_path = (work / "alice.key").absolute()
            key = KeyPair.generate()
            key.save(key_path)
            add_operator(cfg.resolve(cfg.api.operators_file), "alice", "approver", key.public,
                         time.time() + 86400, with_token=False)
            c.print(f"waiting in the queue: {aid}. To approve (pre-flight runs again first):")
            c.print(f"  samantha approvals approve {aid} --key {key_path} --operator alice -c {cfg_path}",
                    highlight=False, soft_wrap=True)
            ctx.facts["chaos escalation waiting"] = aid
    finally:
        lifecycle.down(cfg)


def _native_verdicts(ctx, daemon) -> None:
    """The shipped native Chaos Toolkit experiments (experiments/native), classified activity by activity and
    each injection judged by the daemon's own pre-flight (POST /v1/chaos/experiments/native/preflight)."""
    verdicts = {}
    for f in sorted((Path(__file__).resolve().parents[3] / "experiments" / "native").glob("*.yaml")):
        v = daemon.post("/v1/chaos/experiments/native/preflight",
                        json={"document": f.read_text(), "source": f.name}).json()
        verdicts[f.stem] = v["verdict"]
        first = v["reasons"][0] if v["reasons"] else None
        ctx.console.print(f"native Chaos Toolkit experiment {f.name}: {v['verdict']}"
                          + (f" — [{first['code']}] {first['message']}" if first else ""), markup=False,
                          highlight=False)
    ctx.facts["native chaos experiments"] = verdicts


def _native_run(ctx, daemon) -> None:
    """One shipped native document run for real by the daemon: chaoslib, toxiproxy's action, ledger, journal."""
    f = Path(__file__).resolve().parents[3] / "experiments" / "native" / "standby-latency-toxiproxy.yaml"
    out = daemon.post("/v1/chaos/experiments/native", json={"document": f.read_text(), "source": f.name}).json()
    ctx.console.print(f"ran native {f.name} (chaostoolkit-toxiproxy, chaoslib): {out.get('outcome')}; ledger "
                      + ", ".join(f"{i['kind']}={i['state']}" for i in out.get("injections") or [])
                      + f"; toxics left on the proxy: {len(out.get('left_on_proxy') or [])}; journal "
                      + f"{(out.get('journal_sha256') or '-')[:12]}", markup=False, highlight=False)
    ctx.facts["native chaos run"] = out.get("outcome")


def _console_brief(ctx, daemon, aid: str) -> None:
    """What the operator's console shows for this request, decision first (the page itself is served too)."""
    import httpx

    from samantha.api.console.brief import approval_brief, pct

    c = ctx.console
    item = daemon.get(f"/v1/chaos/approvals/{aid}")
    d = approval_brief(item, daemon.get("/v1/status").get("verdicts") or [], time.time())
    page = httpx.get(f"{daemon.url}/console/approvals/{aid}", headers=daemon.client.headers(), timeout=30)
    b = d["blast"]
    c.print(f"console: {daemon.url}/console/approvals/{aid} (HTTP {page.status_code}); an alert links to it", highlight=False)
    c.print(f"  {d['what']} for {d['duration']}; expires in {d['expires_in']}", highlight=False, markup=False)
    c.print(f"  blast: {pct(b['live_share'])} of live traffic, active slot's only path hit: "
            f"{'yes' if b['active_only_path'] else 'no'}, error budget left {pct(b['error_budget'])}; revert "
            f"{'tested' if d['revert']['tested'] else 'NOT tested'} on this Cube; health "
            + ", ".join(f"{n} {k}" for k, n in d["lights"].items()), highlight=False, markup=False)
