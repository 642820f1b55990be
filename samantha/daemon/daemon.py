"""`samantha run`: one process that owns the DuckDB file and governs the Cube.

Composes the telemetry store (the only writer), the local HTTP API on loopback (ingest,
status, incidents, actions, gates, audit), the host collector, the steady-state graph
(gate evaluation on new telemetry and at least every `sre.eval_interval_s`), the
rollout controller when present, chaos mode (its ledger recovered before the API serves, its
API, the approval queue behind the console, a TTL sweeper), and alert delivery. SIGTERM/SIGINT stop it gracefully:
the API stops taking requests, the running cycle finishes, telemetry is flushed and the
store closed. Under systemd it sends READY=1, WATCHDOG=1 (only while cycles complete)
and STOPPING=1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import uvicorn

from samantha import __version__
from samantha.api.app import make_app
from samantha.api.client import run_file
from samantha.api.uplink_routes import make_uplink_router
from samantha.core.audit import AuditLog, DuckDBAuditStore, trusted_keys, verify_store
from samantha.core.clock import REAL_CLOCK, Clock
from samantha.core.config import SamanthaConfig
from samantha.core.signing import KeyPair
from samantha.cube.client import CubeClient
from samantha.cube.protocol import CubeError
from samantha.daemon.sd_notify import Notifier, watchdog_interval_s
from samantha.gates.engine import GateEngine
from samantha.loop import effects, tables
from samantha.loop.graph import SteadyStateGraph
from samantha.loop.incidents import IncidentBook
from samantha.loop.known_good import KnownGood
from samantha.loop.ledger import ActionLedger
from samantha.loop.nodes import SreDeps, SreNodes
from samantha.loop.triage import Triager, rule_triage
from samantha.playbooks import PlaybookRunner
from samantha.playbooks.playbook_set import load_playbooks, runner_in_force
from samantha.reporting.incident_summary import summarize
from samantha.telemetry.host import HostCollector
from samantha.telemetry.store import TelemetryStore
from samantha.uplink.alerts import AlertManager
from samantha.uplink.service import UplinkService

log = logging.getLogger("samantha.daemon.daemon")
TWIN_STATE = "twin.json"


def cube_url(config: SamanthaConfig) -> str:
    """`sre.cube_url`, else the running twin's control API (its state file), else the twin's configured port."""
    if config.sre.cube_url:
        return config.sre.cube_url
    try:
        st = json.loads((config.resolve(config.twin.run_dir) / TWIN_STATE).read_text())
        return f"http://{st['host']}:{st['ports']['control_port']}"
    except (OSError, ValueError, KeyError):
        return f"http://{config.twin.host}:{config.twin.control_port}"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the daemon owns SIGTERM/SIGINT: uvicorn must not re-raise them after its own shutdown


def _rollout_parts(daemon: Daemon) -> tuple[Any, Any]:
    """The progressive-rollout controller and its API router, when that subsystem is installed."""
    try:
        from samantha.api.rollout_routes import make_rollout_router
        from samantha.rollout.actions import RolloutActions
        from samantha.rollout.wiring import build_controller
    except ImportError:
        return None, None

    def snapshot() -> dict[str, Any]:
        try:
            return effects.snapshot(daemon.cube.state())
        except CubeError:
            return {}

    def alert(severity: str, summary: str, evidence: dict[str, Any]) -> None:
        daemon.alerts.fire("samantha_rollout", severity, summary[:500], {"source": "rollout"})  # type: ignore[arg-type]

    cfg = daemon.config
    policy = None
    if cfg.sre.rollout_policy:
        from samantha.core.validated_yaml import load_model_file
        from samantha.gates.rollout_policy import RolloutPolicy

        policy = load_model_file(RolloutPolicy, cfg.resolve(cfg.sre.rollout_policy))
    controller = build_controller(cfg, daemon.store, daemon.cube, clock=daemon.clock, policy=policy,
                                  actions=RolloutActions(daemon.ledger, snapshot), alert=alert,
                                  max_step_s=cfg.sre.rollout_max_step_s, known_good=daemon.known_good)
    return controller, make_rollout_router(controller)


def _chaos_parts(daemon: Daemon) -> tuple[Any, Any]:
    """Chaos mode on the daemon's store: the service (ledger recovered before anything serves) and its router."""
    if not daemon.config.chaos.enabled:
        return None, None
    from samantha.api.chaos_routes import make_chaos_router
    from samantha.chaos.approvals import ConsoleApprovals, RelayedDecisions, attach_approvals
    from samantha.chaos.service import ChaosService

    service = ChaosService(daemon.config, daemon.store, daemon.clock, llm=daemon.llm, known_good=daemon.known_good,
                           rollout=lambda: daemon.rollout.mark() if daemon.rollout is not None else None)
    try:
        service.recover_ledger()  # a crash may have left faults injected: revert them first
        queue = attach_approvals(service)
        daemon.approvals_port = ConsoleApprovals(queue, daemon.key.public)
        daemon.uplink.on_decision = RelayedDecisions(queue, daemon.audit)  # decisions the hub relays
        queue.on_record = lambda r: daemon.uplink.outbox.append_records("approval_requests", [r])  # never dropped
    except BaseException:
        service.close()
        raise
    return service, make_chaos_router(service)


def _close_chaos(service: Any) -> None:
    """Stop a running experiment's runner and revert whatever it injected, then close the files."""
    try:
        service.recover_ledger()
    finally:
        if service.approvals is not None:
            service.approvals.close()
        service.close()


class Daemon:
    def __init__(self, config: SamanthaConfig, clock: Clock = REAL_CLOCK, *, notifier: Notifier | None = None):
        self.config, self.clock = config, clock
        self.notifier = notifier or Notifier()
        self.started_at = clock.time()
        self.url: str | None = None
        self.recovery: dict[str, Any] = {}
        self.cycle_errors = 0
        self.last_error: str | None = None
        self.last_cycle_end = time.monotonic()
        self.rollout: Any = None
        self._policy_in_force: str | None = None  # sha256 of the module whose playbooks run; None: local set
        self._routers: list[Any] = []
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._conns: list[Any] = []
        self.collector: HostCollector | None = None
        self.llm: Any = None
        self.chaos: Any = None
        self.approvals_port: Any = None  # the web console's approval pages (chaos mode's queue)

    # ------------------------------------------------------------------ composition
    def open(self) -> Daemon:
        """Open everything in dependency order. Raises on a locked store or bad playbooks."""
        cfg, clock = self.config, self.clock
        Path(cfg.data_dir).mkdir(parents=True, exist_ok=True)
        self.store = TelemetryStore.open(cfg, clock)
        try:
            tables.create(self.store.write_sql)
            self.key = KeyPair.load_or_create(cfg.cube_key_path)
            self._audit_conn = self._conn()
            self.audit = AuditLog(DuckDBAuditStore(self._audit_conn), self.key, clock)
            self.alerts = AlertManager(self._conn(), cfg.alerts, clock)
            self.playbooks = load_playbooks(cfg)
            self.runner = PlaybookRunner(self.playbooks)
            self.cube = CubeClient(cube_url(cfg), timeout=cfg.sre.cube_timeout_s)
            self.ledger = ActionLedger(self.store, clock)
            self.incidents = IncidentBook(self.store, clock)
            self.known_good = KnownGood(self.store, clock)  # the one set: loop, rollout controller and chaos read it
            self.triager = Triager(self.incidents, self._triage_fn(), queue_size=cfg.sre.triage_queue).start()
            deps = SreDeps(config=cfg, clock=clock, store=self.store, cube=self.cube,
                           engine=GateEngine(self.store, clock), runner=self.runner, ledger=self.ledger,
                           incidents=self.incidents, triager=self.triager, audit=self.audit, alert=self._alert,
                           resolve_alert=self._resolve_alert, playbooks={p.name: p for p in self.playbooks},
                           known_good=self.known_good)
            self.nodes = SreNodes(deps)
            self.graph = SteadyStateGraph(self.nodes, cfg.resolve(cfg.sre.checkpoint_path),
                                          keep=cfg.sre.checkpoint_keep)
            self.recovery = self.graph.resume()  # a cycle a crash interrupted finishes before anything new
            if self.recovery.get("resumed"):
                self.audit.append("recovery", {k: v for k, v in self.recovery.items() if k != "verified"})
            if cfg.host_collector.enabled:
                self.collector = HostCollector(self.store, clock=clock, interval_s=cfg.host_collector.interval_s,
                                               disk_path=cfg.data_dir).start()
            self.uplink = UplinkService(cfg, self.store, clock, key=self.key, conn=self._conn(), alerts=self.alerts,
                                        audit=self.audit, cube=self.cube, bundle_expires_at=self._active_bundle_expiry)
            self.uplink_view = self.uplink.console_view  # the console's Status page
            self._routers.append(make_uplink_router(self.uplink))
            self.rollout, router = _rollout_parts(self)
            self._local_rollout_policy = self.rollout.policy if self.rollout is not None else None
            self.nodes.d.rollout = self.rollout  # abort_rollout / hold_rollout act on the controller too
            if router is not None:
                self._routers.append(router)
            self.chaos, router = _chaos_parts(self)
            if router is not None:
                self._routers.append(router)
            # operator surfaces (auth, /metrics, console, reports): samantha/api/surfaces.py
            from samantha.api.surfaces import Surfaces

            self.surfaces = Surfaces.attach(self)
        except BaseException:
            self.close()
            raise
        return self

    def _active_bundle_expiry(self) -> float | None:
        """The active bundle's expiry as the last cycle saw the Cube (the bundle-expiry drift SLO)."""
        for slot in (self.graph.last.get("cube") or {}).get("slots") or []:
            if slot.get("role") == "active":
                return slot.get("bundle_expires_at")
        return None

    def _triage_fn(self) -> Any:
        """The local LLM's triage when enabled (its model loads in the background), else the rules."""
        cfg = self.config
        if not (cfg.sre.llm_triage and cfg.llm.enabled):
            return rule_triage
        from samantha.llm.engine import LlmEngine
        from samantha.llm.triage import warm_prompt
        from samantha.loop.llm_triage import llm_triage_fn

        self.llm = LlmEngine.from_config(cfg)
        threading.Thread(target=lambda: self.llm.start(warm=warm_prompt(self.llm)), name="llm-load",
                         daemon=True).start()
        return llm_triage_fn(self.llm, self.audit, self._annotate_alert,
                             lambda iid: {r["kind"]: r["status"] for r in self.ledger.list(incident=iid)})

    def _annotate_alert(self, incident_id: str, summary: str, cause: str) -> None:
        for a in self.alerts.active():
            if a.labels.get("incident") == incident_id:
                self.alerts.fire(a.name, a.severity, a.summary, a.labels, key=a.key,
                                 annotations={**a.annotations, "triage_advisory": summary[:1000],
                                              "probable_cause": cause})

    def _conn(self) -> Any:
        c = self.store.connection()
        self._conns.append(c)
        return c

    def _incident_summary(self, incident_id: str | None) -> str | None:
        """The code-written summary of an incident (samantha/reporting/incident_summary.py): the alerts' headline."""
        inc = self.incidents.get(incident_id) if incident_id else None
        return summarize(inc, self.ledger.list(incident=incident_id, limit=50)).text if inc else None

    def _alert(self, row: dict[str, Any]) -> None:
        sev = (row.get("proposed") or {}).get("severity") or "warning"
        labels = {"playbook": row.get("playbook") or "sre", "incident": row.get("incident_id") or "-"}
        key = f"incident:{row.get('incident_id')}:{sev}" if row.get("incident_id") else None
        reason = str(row.get("reason", ""))[:500]
        self.alerts.fire(f"samantha_{(row.get('playbook') or 'sre').replace('-', '_')}", sev,
                         (self._incident_summary(row.get("incident_id")) or reason)[:1000], labels, key=key,
                         annotations={"reason": reason})

    def _resolve_alert(self, incident_id: str) -> None:
        final = self._incident_summary(incident_id)  # the resolved notice carries the verified effect
        for a in self.alerts.active():
            if a.labels.get("incident") == incident_id:
                if final:
                    self.alerts.fire(a.name, a.severity, final[:1000], a.labels, key=a.key,
                                     annotations={k: v for k, v in a.annotations.items() if k != "summary"})
                self.alerts.resolve(a.key)

    # ------------------------------------------------------------------ the loops
    def cycle(self) -> dict[str, Any]:
        """One steady-state cycle, then one rollout tick (in a worker thread)."""
        self._adopt_policy()
        out = self.graph.run_cycle()
        self.surfaces.after_cycle(out)
        if self.rollout is not None:
            self.rollout.tick(self.clock.time())
        return out

    def _adopt_policy(self) -> None:
        """Run the verified policy module's playbooks and rollout policy; the local (built-in) set without one
        or in safe mode. Checked before every cycle, applied between cycles: one set per cycle, atomically."""
        cur, safe = self.uplink.policy.current(), self.uplink.safe.safe
        key = cur.sha256 if cur is not None and not safe else None
        if key == self._policy_in_force:
            return
        self._policy_in_force = key
        module = cur.module if key and cur is not None else None
        source = f"policy module v{module.version}" if module else "local playbooks"
        try:
            runner = runner_in_force(self.playbooks, module.playbooks if module else [],
                                     list(module.gates) if module else [], source)
        except (KeyError, ValueError) as e:  # the set in force stays; the module's refusal is on record
            self.audit.append("policy_refused", {"source": source, "reason": str(e)[:500]})
            self.alerts.fire("samantha_policy_refused", "warning", f"{source}: playbooks not applied: {e}"[:500],
                             {"source": "uplink"}, key="policy-refused")
            return
        self.nodes.adopt(runner)
        self.runner = runner
        rollout = module.rollout_policy if module and module.rollout_policy else self._local_rollout_policy
        if self.rollout is not None and rollout is not None:
            from samantha.rollout.controller import gate_judge

            self.rollout.adopt(rollout, gate_judge(self.nodes.d.engine, rollout, runner.registry))
        self.audit.append("policy_adopted", {"source": source, "playbooks": [p.name for p in runner.playbooks],
                                             "rollout_policy": rollout.name if rollout else None})

    async def _sre_loop(self) -> None:
        cfg = self.config.sre
        assert self._wake is not None
        last = 0.0
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, last + cfg.eval_interval_s - time.monotonic()))
            gap = last + cfg.min_eval_gap_s - time.monotonic()
            if gap > 0:
                await asyncio.sleep(gap)
            if self._stopping:
                return
            self._wake.clear()
            last = time.monotonic()
            try:
                await asyncio.to_thread(self.cycle)
                self.last_cycle_end = time.monotonic()
            except Exception as e:  # a bad cycle is logged and counted; the loop must go on
                self.cycle_errors += 1
                self.last_error = f"{type(e).__name__}: {e}"[:500]
                log.exception("steady-state cycle failed")

    async def _watchdog_loop(self, interval: float) -> None:
        stale = 2 * self.config.sre.cube_timeout_s + 5 * self.config.sre.eval_interval_s
        while not self._stopping:
            if time.monotonic() - self.last_cycle_end < stale:  # a hung loop stops feeding: systemd restarts us
                self.notifier.watchdog()
            await asyncio.sleep(interval)

    async def _alerts_loop(self) -> None:
        while not self._stopping:
            if self.config.alerts.receivers:
                try:
                    await asyncio.to_thread(self.alerts.deliver)
                except Exception:
                    log.exception("alert delivery failed")
            await asyncio.sleep(1.0)

    async def _chaos_sweep_loop(self) -> None:
        """Revert ledger entries past their TTL and expire undecided approvals, every `chaos.sweep_interval_s`."""
        while not self._stopping:
            try:
                await asyncio.wait_for(asyncio.to_thread(self.chaos.sweep), 30)
            except Exception:  # the next tick retries; a sweep must never take the daemon down
                log.exception("chaos sweep failed")
            await asyncio.sleep(self.config.chaos.sweep_interval_s)

    async def _uplink_loop(self) -> None:
        while not self._stopping:
            try:
                await asyncio.to_thread(self.uplink.tick)
            except Exception:  # offline is normal; a failing tick is logged and the next one retries
                log.exception("uplink tick failed")
            await asyncio.sleep(self.config.uplink.interval_s)

    def on_ingest(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._wake = asyncio.Event()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        api = self.config.api
        server = _Server(uvicorn.Config(self.surfaces.secure(make_app(self)), host=api.host, port=api.port,
                                        log_level="warning", access_log=False, lifespan="off", **self.surfaces.tls))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                self.close()
                print(f"samantha: the API could not listen on {api.host}:{api.port}", flush=True)
                return 1
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        self.url = f"{self.surfaces.scheme}://{api.host}:{port}"
        self._write_run_file()
        tasks = [asyncio.create_task(self._sre_loop()), asyncio.create_task(self._alerts_loop()),
                 asyncio.create_task(self._uplink_loop())]
        if self.chaos is not None:
            self.chaos.api_url = self.url  # where experiment probes ask the gates
            tasks.append(asyncio.create_task(self._chaos_sweep_loop()))
        wd = watchdog_interval_s() if self.config.sre.watchdog else None
        if wd is not None:
            tasks.append(asyncio.create_task(self._watchdog_loop(wd)))
        self.notifier.ready(f"serving {self.url}; {len(self.playbooks)} playbooks")
        print(f"samantha: serving {self.url} (pid {os.getpid()}); "
              f"{'resumed an interrupted cycle' if self.recovery.get('resumed') else 'clean start'}", flush=True)
        await stop.wait()
        self.notifier.stopping()
        self._stopping = True
        self._wake.set()
        server.should_exit = True
        await asyncio.wait(tasks, timeout=2 * self.config.sre.cube_timeout_s + 5)
        for t in tasks:
            t.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(serving, 10)
        self.close()
        print("samantha: stopped", flush=True)
        return 0

    def _write_run_file(self) -> None:
        p = run_file(self.config)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "url": self.url, "started": self.started_at}))
        os.replace(tmp, p)

    def close(self) -> None:
        if getattr(self, "_closed", False):
            return
        self._closed = True
        if self.chaos is not None:
            with contextlib.suppress(Exception):
                _close_chaos(self.chaos)
        for part, stop in (("collector", "stop"), ("triager", "stop"), ("llm", "close"), ("graph", "close"),
                           ("uplink", "close"),
                           ("cube", "close"), ("alerts", "close")):
            obj = getattr(self, part, None)
            if obj is not None:
                with contextlib.suppress(Exception):
                    getattr(obj, stop)()
        for c in self._conns:
            with contextlib.suppress(Exception):
                c.close()
        store = getattr(self, "store", None)
        if store is not None:
            store.close()  # flushes what is buffered, checkpoints DuckDB
        with contextlib.suppress(OSError):
            p = run_file(self.config)
            if p.exists() and json.loads(p.read_text()).get("pid") == os.getpid():
                p.unlink()

    # ------------------------------------------------------------------ DaemonView (the API)
    def status(self) -> dict[str, Any]:
        last = self.graph.last
        cube = last.get("cube")
        return {
            "version": __version__, "pid": os.getpid(), "url": self.url, "uptime_s": round(self.clock.time()
                                                                                         - self.started_at, 1),
            "cube_url": self.cube.base_url, "cube": cube, "cube_error": last.get("cube_error"),
            "slots": cube["slots"] if cube else None, "weights": cube["weights"] if cube else None,
            "safe_mode": cube["safe_mode"] if cube else None,
            "verdicts": [{k: v[k] for k in ("gate", "kind", "status", "reason")} for v in last.get("verdicts", [])],
            "failing": [v["gate"] for v in last.get("failing", [])],
            "open_incidents": self.incidents.open_incidents(),
            "actions": self.ledger.counts(),
            "loop": {**self.graph.stats(), "errors": self.cycle_errors, "last_error": self.last_error,
                     "eval_interval_s": self.config.sre.eval_interval_s},
            "recovery": self.recovery, "triage": {**self.triager.stats(), "method": "llm" if self.llm else "rules",
                                                  "llm": self.llm.status().model_dump(mode="json") if self.llm else None},
            "playbooks": [{"name": p.name, "version": p.version} for p in self.runner.playbooks],
            "playbooks_source": "policy module" if self._policy_in_force else "local",
            "rollout": _jsonable(self.rollout.status()) if self.rollout is not None else None,
            "known_good": self.known_good.rows(),
            "telemetry": {k: v for k, v in self.store.stats().items()
                          if k in ("accepted", "rejected", "shed", "commits", "committed_by_table",
                                   "visibility_lag_ms")},
            "alerts_active": len(self.alerts.active()),
            "uplink": self.uplink.summary(),
        }

    def incidents_list(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        return self.incidents.list(status=status, limit=limit)

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        return self.incidents.get(incident_id)

    def actions(self, status: str | None, kind: str | None, incident: str | None, limit: int) -> list[dict[str, Any]]:
        return self.ledger.list(limit=limit, status=status, kind=kind, incident=incident)

    def action(self, action_id: str) -> dict[str, Any] | None:
        return self.ledger.get(action_id)

    def gates(self) -> dict[str, Any]:
        specs = {g.name: g.model_dump(mode="json") for g in self.runner.gates}
        return {"gates": specs, "verdicts": self.graph.last.get("verdicts", []),
                "evaluated_at": self.graph.last.get("now")}

    def audit_verify(self) -> dict[str, Any]:
        conn = self.store.connection()  # a reader of its own: the audit writer keeps its connection
        try:
            report = verify_store(DuckDBAuditStore(conn, create=False), trusted_keys(self.key.public))
        finally:
            conn.close()
        return report.as_dict()

    def extra_routers(self) -> list[Any]:
        return list(self._routers)


def _jsonable(v: Any) -> Any:
    return v.model_dump(mode="json") if hasattr(v, "model_dump") else v


def run(config: SamanthaConfig) -> int:
    """Foreground daemon; returns the exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    daemon = Daemon(config).open()
    return asyncio.run(daemon.serve())
