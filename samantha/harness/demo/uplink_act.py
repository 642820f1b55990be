"""Act (on the embedded NATS hub: `samantha hub serve`): the link to the hub drops, the outbox grows within its budget, the policy module expires
(safe mode), the link returns flapping and the Cube catches up: nothing lost, nothing twice. The
rollouts the Cube ran offline reach the hub as DORA facts, and the hub computes fleet DORA. Then
an operator's decision on the chaos act's waiting escalation reaches the Cube relayed by the hub."""

from __future__ import annotations

import secrets
import time

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from samantha.chaos.approvals import ApprovalQueue, RelayedDecisions
from samantha.chaos.service import ChaosService
from samantha.core.audit import AuditLog, DuckDBAuditStore
from samantha.core.clock import REAL_CLOCK, SimClock
from samantha.core.config import StoreConfig, UplinkConfig
from samantha.core.signing import KeyPair, trust_public_key
from samantha.cube.proxy_client import ProxyClient
from samantha.harness.bench.offline import START, Flapper, gauges, raw_requests, rollup_minutes, sre_hour
from samantha.harness.demo.rollout_history import record_rollout
from samantha.harness.hub_process import spawn_nats_hub
from samantha.harness.proxy_process import spawn_proxy
from samantha.hub import nats_ops
from samantha.hub.storage import HubStorage
from samantha.loop import tables
from samantha.loop.incidents import IncidentBook
from samantha.loop.ledger import ActionLedger
from samantha.reporting.dora import hub_dora
from samantha.rollout.record import DuckRolloutStore
from samantha.telemetry.store import TelemetryStore
from samantha.uplink.alerts import AlertManager
from samantha.uplink.policy_module import promote_module, sign_module
from samantha.uplink.service import UplinkService

TITLE = "Offline: store-and-forward, signed policy, safe mode, catch-up, fleet DORA"
# bundles delivered before the link drops (created hours before), rolled out offline at these hours
ROLLOUTS = ((1, "v2", 2.0, False), (3, "v3", 1.0, True), (5, "v4", 0.5, False))


def run(ctx) -> None:
    con = ctx.console
    hours = 12 if ctx.fast else 72
    module_h = 8 if ctx.fast else 48
    clock = SimClock(START)
    rng = np.random.default_rng(5)
    hub_key = KeyPair.generate()
    data = ctx.workdir / "uplink"
    trust_public_key(hub_key.public, data / "keys" / "hub")
    with spawn_nats_hub(data / "hub") as hub, spawn_proxy() as pp:
        proxy = ProxyClient(pp.value)  # a TCP fault proxy: it cuts the NATS link as it cut HTTP
        link = proxy.create_proxy("hub", hub.value.removeprefix("nats://"))
        cfg = ctx.config.model_copy(update={
            "data_dir": str(data),
            "store": StoreConfig(disk_budget_mb=24, max_past_age_s=30 * 86400, buffer_max_rows=2_000_000),
            "uplink": UplinkConfig(hub_url=f"nats://127.0.0.1:{link.listen_port}", cube_id="cube-demo",
                                   outbox_budget_fraction=0.02, timeout_s=2.0)})
        store = TelemetryStore.open(cfg, clock, start_writer=False)
        tables.create(store.write_sql)
        key = KeyPair.load_or_create(cfg.cube_key_path)
        conns = [store.connection(), store.connection()]
        alerts = AlertManager(conns[1], cfg.alerts, clock)
        audit = AuditLog(DuckDBAuditStore(conns[0]), key, clock)
        chaos = _chaos_queue(ctx)  # the chaos act's approval queue, when it left an escalation waiting
        relayed = RelayedDecisions(chaos[1].approvals, audit) if chaos else None
        svc = UplinkService(cfg, store, clock, key=key, alerts=alerts, audit=audit, on_decision=relayed)
        incidents, ledger = IncidentBook(store, clock), ActionLedger(store, clock)
        rollouts = DuckRolloutStore(store)
        try:
            module = sign_module({"version": 1, "issued_at": START - 60, "expires_at": START + module_h * 3600,
                                  "fleet": "demo"}, hub_key)
            nats_ops.publish_policy(hub.value, "fleet", module)
            pulled = _pull_until_applied(svc, version=1)
            con.print(f"NATS hub at {hub.value} (embedded nats-server + Parquet writer), reached through the fault "
                      f"proxy; policy module v1 {'pulled' if pulled else '[bold red]NOT pulled[/]'} "
                      f"(signed, expires in {module_h} h)")
            proxy.disable("hub")
            con.print(f"[bold red]the link drops[/bold red]: {hours} simulated hours offline at 200 rps")
            t = Table("sim time", "outbox batches", "outbox MB / budget", "downsampled", "gap records",
                      "sync", "mode")
            peak, last_safe = 0, False
            for h in range(hours):
                t0 = START + h * 3600
                clock.advance(t0 + 3600 - clock.time())
                if h < 1:
                    raw_requests(store, rng, t0, 3600, 200.0)
                else:
                    rollup_minutes(store, rng, t0, 3600, 200.0)
                gauges(store, rng, t0, 3600, 20)
                sre_hour(incidents, ledger, audit=svc.audit, alerts=alerts, svc=svc, at=t0 + 3600, i=h)
                for at_h, name, age_h, bad in ROLLOUTS:
                    if at_h == h:
                        record_rollout(rollouts, data / "bundles", name, created_at=START - age_h * 3600,
                                       started_at=t0 + 600, regresses=bad)
                out = svc.tick()
                store.retention.run()
                ob = svc.outbox.stats()
                peak = max(peak, ob["pending_bytes"])
                if h % max(1, hours // 8) == 0 or h == hours - 1 or out["safe_mode"] != last_safe:
                    link_out = out.get("link") or {}
                    last = link_out.get("sync")  # the last finished round (rounds run off the tick)
                    sync = ("round in flight" if link_out.get("running") else
                            (last or {}).get("error") or ("connecting" if not last else "ok"))
                    t.add_row(f"+{h + 1} h", str(ob["pending_batches"]),
                              f"{ob['pending_bytes'] / 1e6:.2f} / {ob['budget_bytes'] / 1e6:.2f}",
                              str(ob["downsampled_batches"]), str(ob["gap_records"]),
                              sync.split(":")[0][:24], "[bold red]SAFE" if out["safe_mode"] else "normal")
                last_safe = out["safe_mode"]
            con.print(t)
            st = svc.status()
            if st["safe_mode"]["safe"]:
                con.print(f"[bold red]SAFE MODE[/bold red] since +{(st['safe_mode']['since'] - START) / 3600:.0f} h: "
                          f"{st['safe_mode']['reason']} (chaos off, rollouts frozen, last-known-good bundle stays)")
            con.print("drift SLOs: " + ", ".join(f"{d['gate']} [{'green' if d['status'] == 'pass' else 'red'}]"
                                                 f"{d['status']}[/]" for d in st["drift"]))
            offline_s = hours * 3600
            con.print("[bold green]the link returns[/bold green], flapping")
            proxy.enable("hub")
            t_catch = time.perf_counter()
            attempts = 0
            with Flapper(proxy, "hub", seed=2) as flap, \
                    Progress(TextColumn("[bold]catch-up"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[k]}"),
                             TimeElapsedColumn(), console=con) as bar:
                total = svc.outbox.stats()["pending_batches"]
                task = bar.add_task("catch-up", total=total, k="")
                while attempts < 500 and time.perf_counter() - t_catch < 120:
                    attempts += 1

                    def prog(done, _total, b, base=total - svc.outbox.stats()["pending_batches"]):
                        bar.update(task, completed=base + done, k=f"{b['kind']} #{b['seq']}")

                    res = svc.force_sync(progress=prog)["sync"]
                    if res["ok"] and res["remaining"] == 0:
                        bar.update(task, completed=total)
                        break
                    time.sleep(0.02)
            wall = time.perf_counter() - t_catch
            fleet = _written(data / "hub")
            con.print(f"caught up {offline_s / 3600:.0f} h in {wall:.1f} s ({offline_s / wall:.0f}x real time) "
                      f"through {flap.cuts} link cuts and {attempts} attempts; at the hub: "
                      + ", ".join(f"{k} {v['records']}" for k, v in fleet["kinds"].items())
                      + f"; duplicates {fleet['duplicates']}")
            up = nats_ops.up_stream_state(hub.value)  # a work queue: what the writer wrote has left the stream
            ctx.facts["uplink_up_stream_unwritten"] = up["unwritten"]
            con.print(f"SAMANTHA_UP ({up['retention']}, bound {up['max_bytes'] / 1024**2:.0f} MiB): {up['received']} "
                      f"batches came in, {up['unwritten']} left unwritten")
            _fleet_dora(con, data / "hub", START, clock.time(), ctx.facts)
            ana = KeyPair.generate()
            fresh = sign_module({"version": 2, "issued_at": clock.time() - 60, "expires_at": clock.time() + 7 * 86400,
                                 "fleet": "demo", "operator_keys": [{"name": "ana", "public_key": ana.public.to_b64(),
                                                                     "roles": ["approve"]}],
                                 "channels": ["staging"]}, hub_key)
            nats_ops.publish_policy(hub.value, "staging", fresh)  # this Cube follows `fleet`: not yet for it
            staged = _pull_until_applied(svc, version=2, rounds=1)
            promoted = promote_module(nats_ops.current_policy(hub.value, "staging"), "staging", "fleet", hub_key,
                                      clock.time())  # the root's signed act: released to staging, then fleet
            nats_ops.publish_policy(hub.value, "fleet", promoted)
            _pull_until_applied(svc, version=2)
            here = "[bold red]applied here[/]" if staged else "not applied by this fleet Cube"
            con.print(f"hub publishes v2 on release channel staging ({here}), then promotes it to fleet "
                      f"(re-signed at the root, released to {', '.join(promoted['channels'])}): "
                      f"{'[bold red]still SAFE' if svc.safe.safe else '[green]normal mode'}"
                      f"[/] ({svc.safe.left_because or svc.safe.reason})")
            _relayed_decision(ctx, svc, relayed, hub.value, ana, clock.time())
            ctx.facts.update({"uplink_outbox_peak_mb": round(peak / 1e6, 2),
                              "uplink_catchup_x_realtime": round(offline_s / wall),
                              "uplink_duplicates_at_hub": fleet["duplicates"]})
        finally:
            svc.close()
            if chaos:
                chaos[1].approvals.close()
                chaos[1].close()
                chaos[0].close()
            alerts.close()
            for c in conns:
                c.close()
            store.close()
            proxy.close()


def _written(root, settle_s: float = 1.5, max_s: float = 30.0) -> dict:
    """The writer drains the stream behind the PubAcks: wait (bounded) until its batch count settles."""
    deadline, last, since = time.monotonic() + max_s, -1, time.monotonic()
    while time.monotonic() < deadline:
        hs = HubStorage(root)
        try:
            n = len(hs.batches())
        finally:
            hs.close()
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= settle_s:
            break
        time.sleep(0.2)
    hs = HubStorage(root)
    try:
        return hs.fleet_stats()
    finally:
        hs.close()


def _fleet_dora(con, hub_root, since: float, until: float, facts: dict) -> None:
    from samantha.reporting.report import fmt_secs

    d = hub_dora(hub_root, since, until)
    df, lt, cfr, mttr = d["deployment_frequency"], d["lead_time"], d["change_failure_rate"], d["mttr"]
    con.print(f"[bold]fleet DORA at the hub[/bold] (samantha hub dora --data-dir {hub_root}), over the "
              f"{d['window']['days'] * 24:.0f} h the Cube was offline, from {len(d['cubes'])} cube's Parquet:")
    con.print(f"  deployment frequency {df['per_day']:.3g}/day ({df['bundles_promoted']} bundles promoted); lead time "
              f"p50 {fmt_secs(lt['p50_s'])}, of which disconnected {fmt_secs(lt['disconnected']['p50_s'])} "
              f"(measured latency, not failure) and on the Cube {fmt_secs(lt['on_cube']['p50_s'])}; change failure "
              f"rate {cfr['failed']}/{cfr['total']}; MTTR p50 {fmt_secs(mttr['p50_s'])} over {mttr['n']} recoveries")
    facts.update({"fleet_dora_per_day": df["per_day"], "fleet_dora_change_failure_rate": cfr["rate"],
                  "fleet_dora_mttr_p50_s": mttr["p50_s"]})


def _chaos_queue(ctx) -> tuple[TelemetryStore, ChaosService] | None:
    """The chaos act's store and chaos service with its approval queue, when that act left an escalation waiting."""
    from samantha.core.config import load_config
    from samantha.harness.demo.chaos_act import WORKDIR

    aid, cfg_path = ctx.facts.get("chaos escalation waiting"), ctx.workdir / WORKDIR / "samantha.yaml"
    if not aid or not cfg_path.exists():
        return None
    ccfg = load_config(cfg_path)
    store = TelemetryStore.open(ccfg, REAL_CLOCK, start_writer=False)
    try:
        return store, ChaosService(ccfg, store, REAL_CLOCK, approvals=ApprovalQueue)
    except BaseException:
        store.close()
        raise


def _relayed_decision(ctx, svc: UplinkService, relayed: RelayedDecisions | None, hub_url: str, ana: KeyPair,
                      now: float) -> None:
    """Deny the escalation the chaos act left waiting, from the hub: signed by `ana` (role approve in module v2),
    relayed, pulled by the uplink, checked and applied by the chaos act's own approval queue (`relayed`)."""
    from samantha.uplink.operator_docs import DECISION_KIND, sign_operator_doc

    aid = ctx.facts.get("chaos escalation waiting")
    if relayed is None or not aid:
        ctx.console.print("relayed approval decisions: no escalation is waiting (the chaos act did not run before)")
        return
    queue = relayed.queue
    doc = sign_operator_doc({"kind": DECISION_KIND, "cube": svc.cube_id, "request_id": aid, "decision": "deny",
                             "proposal_key": queue.get(aid)["proposal"]["key"], "operator": "ana",
                             "nonce": secrets.token_hex(12), "issued_at": now, "expires_at": now + 3600,
                             "reason": "not during the catch-up"}, ana)
    nats_ops.relay_doc(hub_url, svc.cube_id, doc)
    got = svc.force_sync().get("decisions") or {"received": 0}
    for t in relayed.threads:
        t.join(30)
    row = svc.decisions(1)[0]
    ctx.console.print(f"a decision relayed by the hub: ana denies [bold]{aid}[/bold] (the chaos act's kill of the "
                      f"active slot); the Cube pulled {got['received']}, verified it ({row['status']}) and the "
                      f"queue applied it: [bold]{queue.get(aid)['status']}[/bold], audited as relayed by hub",
                      highlight=False)
    ctx.facts["uplink_relayed_decision"] = f"{aid} {queue.get(aid)['status']}"


def _pull_until_applied(svc: UplinkService, *, version: int, rounds: int = 5) -> bool:
    """Bounded: a round on a loaded machine can time out connecting, or the flapping may have left a
    half-dead connection (a failed pull redials next round); a round that pulls nothing is retried."""
    for _ in range(rounds):
        policy = svc.force_sync(max_seconds=10).get("policy") or {}
        if policy.get("version") == version and policy.get("status") in ("applied", "unchanged"):
            return True
        time.sleep(0.2)
    return False
