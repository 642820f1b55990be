"""The composition root: `build_parts(config, clock, api_url=...)` builds every part of the daemon, in dependency
order, into one frozen `Parts`; `Parts.close()` closes them in reverse order.

Order: store (and the tables), Cube key, audit log, alerts, playbooks, Cube client, action ledger,
incidents, LLM (when triage uses it) and triager, gate engine, rollout controller, steady-state
nodes and graph (then the graph's `resume()`: a cycle a crash interrupted finishes before anything
new), host collector, Prometheus scraper (`scrape.targets`), outbox, chaos service with its approval
queue (its ledger recovered: whatever a crash left injected is reverted before the API serves), uplink,
operator surfaces, API routers.

Nothing is wired by assignment afterwards. Each part gets its collaborators in its constructor,
which the order above makes possible:
- the rollout controller is built before the nodes, so `SreDeps(rollout=...)` names it;
- the outbox is built before the chaos approval queue (which queues its requests up to the hub)
  and handed to the uplink, which is built after the queue (its relayed decisions go to it);
- the chaos service builds its own approval queue (`approvals=`): each needs the other;
- what is known only later is asked through a provider: the approval queue (the rollout controller's grey
  zone asks it), the policy module's supply section (the rollout's bundle intake asks the uplink's store),
  `api_url()` (the daemon's URL once uvicorn has bound its port: experiment probes ask the gates there) and
  the last cycle's Cube state (the uplink's bundle-expiry gauge, the metrics).
The API's view of the daemon (`samantha/daemon/view.py`) is built over `Parts` by the daemon.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from samantha import __version__
from samantha.api.rollout_routes import make_rollout_router
from samantha.api.surfaces import Surfaces
from samantha.api.uplink_routes import make_uplink_router
from samantha.core.audit import AuditLog, DuckDBAuditStore
from samantha.core.clock import REAL_CLOCK, Clock
from samantha.core.config import SamanthaConfig
from samantha.core.signing import KeyPair
from samantha.core.supply import SupplyPolicy
from samantha.cube.client import CubeClient
from samantha.cube.endpoints import cube_endpoints
from samantha.cube.protocol import CubeError
from samantha.daemon.alerting import ApprovalAlerts, IncidentAlerts, SupplyEvents
from samantha.gates.engine import GateEngine
from samantha.gates.policy_lint import load_policy_file
from samantha.gates.rollout_policy import RolloutPolicy
from samantha.loop import effects, tables
from samantha.loop.graph import SteadyStateGraph
from samantha.loop.incidents import IncidentBook
from samantha.loop.known_good import KnownGood
from samantha.loop.ledger import ActionLedger
from samantha.loop.nodes import SreDeps, SreNodes
from samantha.loop.recall import apply_recall
from samantha.loop.triage import TriageFn, Triager, rule_triage
from samantha.playbooks import Playbook, PlaybookRunner
from samantha.playbooks.playbook_set import load_playbooks
from samantha.rollout.actions import RolloutActions
from samantha.rollout.controller import RolloutController
from samantha.rollout.plans import PlanRunner
from samantha.rollout.wiring import build_controller, bundle_catalog
from samantha.telemetry.host import HostCollector
from samantha.telemetry.scrape import PrometheusScraper
from samantha.telemetry.store import TelemetryStore
from samantha.uplink.alerts import AlertManager
from samantha.uplink.outbox import Outbox
from samantha.uplink.service import UplinkService, make_outbox

if TYPE_CHECKING:  # chaos mode and the LLM are imported when configured (a daemon without them never loads them)
    from samantha.chaos.approvals import ApprovalQueue, ConsoleApprovals
    from samantha.chaos.service import ChaosService
    from samantha.llm.engine import LlmEngine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parts:
    config: SamanthaConfig
    clock: Clock
    store: TelemetryStore  # the only writer of the DuckDB file
    key: KeyPair  # the Cube's key
    audit: AuditLog
    alerts: AlertManager
    incident_alerts: IncidentAlerts
    playbooks: list[Playbook]  # the local set (a verified policy module's set replaces it in the loop)
    runner: PlaybookRunner  # over the local set
    cube: CubeClient
    ledger: ActionLedger
    known_good: KnownGood  # the one set: the loop, the rollout controller and chaos read it
    incidents: IncidentBook
    llm: LlmEngine | None  # the local LLM, when triage uses it
    triager: Triager
    engine: GateEngine
    rollout: RolloutController
    rollout_policy: RolloutPolicy  # the local rollout policy (`sre.rollout_policy`, else the default)
    plans: PlanRunner  # the policy module's Plans: started through `rollout` when their constraints hold
    nodes: SreNodes
    graph: SteadyStateGraph
    recovery: dict[str, Any]  # what the graph's `resume()` did at start-up
    collector: HostCollector | None
    scraper: PrometheusScraper | None  # `scrape.targets` (a Triton slot's metrics port among them)
    outbox: Outbox
    chaos: ChaosService | None  # chaos mode (`chaos.enabled`)
    approvals: ConsoleApprovals | None  # chaos mode's queue as the web console's approval pages
    uplink: UplinkService
    surfaces: Surfaces
    routers: tuple[APIRouter, ...]  # the API's routers beyond its own (the console's is the view's)
    closing: contextlib.ExitStack = field(repr=False, compare=False)

    def close(self) -> None:
        """Close every part, in the reverse order of `build_parts`. Idempotent."""
        self.closing.close()


def build_parts(config: SamanthaConfig, clock: Clock = REAL_CLOCK, *,
                api_url: Callable[[], str | None] = lambda: None) -> Parts:
    """Build every part in dependency order. On any failure what was built is closed again, and the error raised.
    Raises on a locked store or bad playbooks, and `BindRefused` on a non-loopback API without TLS."""
    cfg = config
    with contextlib.ExitStack() as stack:
        def closes(fn: Callable[[], Any]) -> None:
            def call() -> None:
                with contextlib.suppress(Exception):
                    fn()
            stack.callback(call)

        def conn() -> Any:
            c = store.connection()
            closes(c.close)
            return c

        Path(cfg.data_dir).mkdir(parents=True, exist_ok=True)
        store = TelemetryStore.open(cfg, clock)
        stack.callback(store.close)  # last: flushes what is buffered, checkpoints DuckDB
        tables.create(store.write_sql)
        key = KeyPair.load_or_create(cfg.cube_key_path)
        audit = AuditLog(DuckDBAuditStore(conn()), key, clock)
        alerts = AlertManager(conn(), cfg.alerts, clock)
        closes(alerts.close)
        playbooks = load_playbooks(cfg)
        runner = PlaybookRunner(playbooks)
        cube = CubeClient(cube_endpoints(cfg).control_url, timeout=cfg.sre.cube_timeout_s)
        closes(cube.close)
        ledger = ActionLedger(store, clock)
        known_good = KnownGood(store, clock)
        incidents = IncidentBook(store, clock)
        incident_alerts = IncidentAlerts(alerts, incidents, ledger)
        llm: LlmEngine | None = None
        triage: TriageFn = rule_triage
        if cfg.sre.llm_triage and cfg.llm.enabled:
            from samantha.llm.engine import LlmEngine
            from samantha.llm.triage import warm_prompt
            from samantha.loop.llm_triage import llm_triage_fn

            llm = LlmEngine.from_config(cfg)
            closes(llm.close)
            threading.Thread(target=lambda: llm.start(warm=warm_prompt(llm)), name="llm-load", daemon=True).start()
            triage = llm_triage_fn(llm, audit, incident_alerts.annotate,
                                   lambda iid: {r["kind"]: r["status"] for r in ledger.list(incident=iid)})  # the model loads in the background
        triager = Triager(incidents, triage, queue_size=cfg.sre.triage_queue).start()
        closes(triager.stop)
        engine = GateEngine(store, clock)
        # the gates read accepted rows from memory: DuckDB commits as often as durability needs, not per cycle
        store.commit_for_durability()

        def cube_snapshot() -> dict[str, Any]:
            try:
                return effects.snapshot(cube.state())
            except CubeError:
                return {}

        late: dict[str, Any] = {}  # the approval queue (a grey zone asks it) and the uplink, built below

        def supply() -> SupplyPolicy | None:
            """The verified policy module's supply section (SBOM/provenance a bundle must carry to load)."""
            cur = late["uplink"].policy.current() if "uplink" in late else None
            return cur.module.supply if cur is not None else None

        # the bundle intake (TUF when twin.tuf_root is pinned, then SBOM/provenance): its refusals audited and
        # alerted, its hold -> safe mode
        catalog = bundle_catalog(cfg, clock, supply=supply, on_event=SupplyEvents(
            alerts, audit, lambda: late["uplink"].evaluate_safe_mode(clock.time()) if "uplink" in late else None))
        rollout = build_controller(cfg, store, cube, clock=clock, policy=_local_rollout_policy(cfg),
                                   actions=RolloutActions(ledger, cube_snapshot), alert=incident_alerts.rollout,
                                   max_step_s=cfg.sre.rollout_max_step_s, known_good=known_good,
                                   ask=lambda: late.get("queue"), catalog=catalog, audit=audit.append)
        plans = PlanRunner(rollout, Path(cfg.data_dir) / "plans.json", clock, samantha_version=__version__,
                           audit=audit.append)
        nodes = SreNodes(SreDeps(config=cfg, clock=clock, store=store, cube=cube, engine=engine, runner=runner,
                                 ledger=ledger, incidents=incidents, triager=triager, audit=audit,
                                 alert=incident_alerts.fire, resolve_alert=incident_alerts.resolve,
                                 playbooks={p.name: p for p in playbooks},
                                 known_good=known_good,
                                 rollout=rollout))  # abort_rollout / hold_rollout act on the controller too
        graph = SteadyStateGraph(nodes, cfg.resolve(cfg.sre.checkpoint_path), keep=cfg.sre.checkpoint_keep)
        closes(graph.close)
        recovery = graph.resume()  # a cycle a crash interrupted finishes before anything new
        if recovery.get("resumed"):
            audit.append("recovery", {k: v for k, v in recovery.items() if k != "verified"})
        collector = None
        if cfg.host_collector.enabled:
            collector = HostCollector(store, clock=clock, interval_s=cfg.host_collector.interval_s,
                                      disk_path=cfg.data_dir).start()
            closes(collector.stop)
        scraper = None
        if cfg.scrape.targets:
            def slot_roles() -> dict[str, dict[str, str]]:
                """Each slot's role and bundle as the loop's last cycle saw the Cube (labels of scraped samples)."""
                return {s["name"]: {"role": s["role"], "bundle": s.get("bundle_id")}
                        for s in (graph.last.get("cube") or {}).get("slots") or [] if s.get("name")}

            scraper = PrometheusScraper(store, cfg.scrape.targets, clock=clock, timeout_s=cfg.scrape.timeout_s,
                                        interval_s=cfg.scrape.interval_s, slot_roles=slot_roles)
            scraper.start()
            closes(scraper.stop)
        outbox = make_outbox(cfg, conn(), clock)
        chaos, approvals, relayed = None, None, None
        if cfg.chaos.enabled:
            from samantha.api.chaos_routes import make_chaos_router
            from samantha.chaos.approvals import ApprovalQueue, ConsoleApprovals, RelayedDecisions
            from samantha.chaos.service import ChaosService

            approval_alerts = ApprovalAlerts(alerts, api_url)

            def on_request(r: dict[str, Any]) -> None:  # never dropped: up to the hub; an operator is told
                outbox.append_records("approval_requests", [r])
                approval_alerts.requested(r)

            def queue(service: ChaosService) -> ApprovalQueue:
                return ApprovalQueue(service, on_record=on_request, on_closed=approval_alerts.closed)

            chaos = ChaosService(cfg, store, clock, llm=llm, known_good=known_good, rollout=rollout.mark,
                                 api_url=api_url, approvals=queue)
            closes(lambda: _close_chaos(chaos))
            chaos.recover_ledger()  # a crash may have left faults injected: revert them first
            late["queue"] = chaos.approvals
            approvals = ConsoleApprovals(chaos.approvals, key.public)
            relayed = RelayedDecisions(chaos.approvals, audit)  # decisions the hub relays

        def active_bundle_expiry() -> float | None:
            """The active bundle's expiry as the last cycle saw the Cube (the bundle-expiry drift SLO)."""
            for slot in (graph.last.get("cube") or {}).get("slots") or []:
                if slot.get("role") == "active":
                    return slot.get("bundle_expires_at")
            return None

        uplink = UplinkService(cfg, store, clock, key=key, outbox=outbox, alerts=alerts, audit=audit, cube=cube,
                               bundle_expires_at=active_bundle_expiry, on_decision=relayed,
                               supply_hold=catalog.supply_hold, tuf=catalog.tuf,
                               on_recall=lambda b, n, r: apply_recall(nodes, b, n, r).as_dict())
        closes(uplink.close)
        late["uplink"] = uplink
        surfaces = Surfaces(cfg, clock, store, cube_id=key.public.key_id,
                            last_cube=lambda: (graph.last or {}).get("cube"))
        routers = (make_uplink_router(uplink), make_rollout_router(rollout),
                   *((make_chaos_router(chaos),) if chaos is not None else ()), *surfaces.routers)
        return Parts(config=cfg, clock=clock, store=store, key=key, audit=audit, alerts=alerts,
                     incident_alerts=incident_alerts, playbooks=playbooks, runner=runner, cube=cube, ledger=ledger,
                     incidents=incidents, known_good=known_good, llm=llm, triager=triager, engine=engine, rollout=rollout,
                     rollout_policy=rollout.policy, plans=plans, nodes=nodes, graph=graph, recovery=recovery,
                     collector=collector, scraper=scraper, outbox=outbox, chaos=chaos, approvals=approvals, uplink=uplink,
                     surfaces=surfaces, routers=routers, closing=stack.pop_all())
    raise AssertionError("unreachable")  # the with block returns or raises


def _local_rollout_policy(cfg: SamanthaConfig) -> RolloutPolicy | None:
    """Linted (samantha/gates/policy_lint.py): a bad policy stops the start with file:line:column."""
    return load_policy_file(cfg.resolve(cfg.sre.rollout_policy)) if cfg.sre.rollout_policy else None


def _close_chaos(service: ChaosService) -> None:
    """Stop a running experiment's runner and revert whatever it injected, then close the files."""
    try:
        service.recover_ledger()
    finally:
        if service.approvals is not None:
            service.approvals.close()
        service.close()
