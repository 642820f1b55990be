"""ChaosService: plan, pre-flight, run, learn, recover. The daemon (`samantha run`) hosts it.

It owns the chaos SQLite file (ledger, experiments, findings, learned gates, outbox,
approvals) and reads telemetry from the store the daemon owns. Experiments run one at
a time, each in a Chaos Toolkit runner subprocess that dies with the daemon; the daemon
calls `recover_ledger()` at start-up, which reverts whatever a crash left injected.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from samantha.chaos import findings as fnd
from samantha.chaos import planner
from samantha.chaos.experiment import (
    ExperimentTemplate,
    JournalSummary,
    build_document,
    native_document,
    summarize_journal,
)
from samantha.chaos.fault_kinds import REGISTRY, parse_fault
from samantha.chaos.ledger import Ledger
from samantha.chaos.native_classify import NativePlan, NativeVerdict, classify, judge, proxy_roles
from samantha.chaos.native_classify import may_run_approved as may_run_native
from samantha.chaos.providers.revert import is_stopped, revert, stressors
from samantha.chaos.records import ChaosRecords
from samantha.core.clock import REAL_CLOCK, Clock
from samantha.core.config import SamanthaConfig
from samantha.core.domain import RolloutMark
from samantha.core.proposal import Proposal
from samantha.core.signing import canonical_json, sha256_hex
from samantha.cube.client import CubeClient
from samantha.cube.endpoints import cube_endpoints
from samantha.cube.protocol import CubeState
from samantha.cube.proxy_client import ProxyClient
from samantha.gates.engine import GateEngine
from samantha.gates.registry import GATE_ADAPTER, GateRegistry
from samantha.gates.spec import GateBase, judges_canary
from samantha.gates.verdict import Verdict
from samantha.kernel.policy import CubeSnapshot
from samantha.kernel.preflight import (
    GateStatus,
    HostSnapshot,
    PreflightInput,
    PreflightResult,
    check,
    may_run_approved,
)
from samantha.kernel.view import kernel_snapshot
from samantha.loop.known_good import KnownGood
from samantha.telemetry.schema import JUDGED_SQL
from samantha.telemetry.store import TelemetryStore

log = logging.getLogger(__name__)


class ChaosBusy(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class _Run:
    """One runner subprocess's result: exit code, outcome, journal (path, sha256, summary), its probe log."""

    rc: int | None
    state: str
    journal: Path
    sha: str | None
    summary: JournalSummary | None
    probe_log: Path


class ChaosService:
    """`api_url`: where experiment probes ask the gates, asked each time an experiment is configured (the daemon's
    own URL is known only once its API has bound a port); its None, or no provider, falls back to `chaos.api_url`,
    then the configured API address. `approvals`: builds the approval queue over this service (each needs the
    other: the queue's graph runs the service's pre-flight and execution; `submit` and `sweep` go through the
    queue), called once, last in the constructor; without it an escalated proposal is only reported."""

    def __init__(self, config: SamanthaConfig, store: TelemetryStore, clock: Clock = REAL_CLOCK, *,
                 llm: Any = None, registry: GateRegistry | None = None, known_good: KnownGood | None = None,
                 rollout: Callable[[], RolloutMark | None] | None = None,
                 api_url: Callable[[], str | None] | None = None,
                 approvals: Callable[[ChaosService], Any] | None = None) -> None:
        """`known_good`: the Cube's one known-good set (the daemon's); None: one on `store`. `rollout`: the
        rollout controller's mark (`RolloutController.mark`), when the daemon runs one."""
        self.config, self.cc, self.store, self.clock = config, config.chaos, store, clock
        self.known_good = known_good if known_good is not None else KnownGood(store, clock)
        self.rollout = rollout
        self._api_url = api_url
        self.llm = llm
        db = config.resolve(self.cc.db)
        self.ledger = Ledger(db, clock)
        self.records = ChaosRecords(db)
        self.journals = config.resolve(self.cc.journals_dir).absolute()
        self.journals.mkdir(parents=True, exist_ok=True)
        self.registry = registry or GateRegistry.with_builtins()
        for g in self.records.learned_gates():
            self.registry.add(g.gate, g.provenance, replace=True)
        self.engine = GateEngine(store, clock)
        self._eval_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self.last_recovery: dict[str, Any] = {}
        self.approvals: Any = approvals(self) if approvals is not None else None  # samantha.chaos.approvals

    @property
    def api_url(self) -> str:
        return ((self._api_url() if self._api_url is not None else None) or self.cc.api_url
                or f"http://{self.config.api.host}:{self.config.api.port}")

    def close(self) -> None:
        self.ledger.close()
        self.records.close()

    # --- gates ------------------------------------------------------------------------------
    def evaluate(self, names: list[str] | None = None, specs: list[dict[str, Any]] | None = None) -> list[Verdict]:
        gates: list[GateBase] = []
        for n in names or []:
            if n not in self.registry:
                raise KeyError(n)
            gates.append(self.registry.get(n))
        for s in specs or []:
            gates.append(GATE_ADAPTER.validate_python(s))
        with self._eval_lock:
            return self.engine.evaluate(gates)

    def steady_state_gates(self) -> list[str]:
        """Gates that say whether the Cube is in steady state now: every gate but those that judge a canary
        (`judges_canary`), which only mean something during a rollout, and chaos never runs during one."""
        return [e.gate.name for e in self.registry.entries() if not judges_canary(e.gate)]

    def gates_list(self) -> list[dict[str, Any]]:
        return [{"name": e.gate.name, "kind": e.gate.kind, "description": e.gate.description,  # type: ignore[attr-defined]
                 "provenance": e.provenance.model_dump(mode="json")} for e in self.registry.entries()]

    # --- the Cube and the host now ----------------------------------------------------------
    def cube_state(self) -> CubeState:
        with CubeClient(cube_endpoints(self.config).control_url, timeout=5.0) as c:
            return c.state()

    def cube_snapshot(self, st: CubeState) -> CubeSnapshot:
        """The kernel's snapshot pre-flight judges on (samantha/kernel/view.py)."""
        return kernel_snapshot(st, self.rollout() if self.rollout is not None else None, self.known_good.snapshot())

    def host_snapshot(self) -> HostSnapshot:
        data = Path(self.config.data_dir)
        data.mkdir(parents=True, exist_ok=True)
        return HostSnapshot(cpu_count=psutil.cpu_count() or 1, cpu_used_ratio=min(1.0, psutil.cpu_percent(0.2) / 100),
                            mem_available_mb=psutil.virtual_memory().available / 2**20,
                            disk_free_mb=psutil.disk_usage(str(data)).free / 2**20)

    def error_budget(self) -> float | None:
        now = self.clock.time()
        t = self.store.read_arrow("SELECT count(*) AS n, sum(CASE WHEN ok THEN 0 ELSE 1 END) AS e FROM requests "
                                  f"WHERE ts > ? AND ts <= ? AND slot = 'active' AND NOT shadow AND {JUDGED_SQL}",
                                  [now - self.cc.error_budget_window_s, now]).to_pylist()[0]
        n, e = int(t["n"] or 0), int(t["e"] or 0)
        if n < 50:
            return None
        return max(0.0, 1.0 - (e / n) / (1.0 - self.cc.slo_target))

    def revert_tested(self) -> frozenset[str]:
        return frozenset(self.ledger.reverted_kinds() & set(REGISTRY.names()))

    def preflight_input(self, p: Proposal, *, guards: list[GateBase] = (), cube: CubeState | None = None,
                        host: HostSnapshot | None = None, verdicts: list[Verdict] | None = None) -> PreflightInput:
        now = self.clock.time()
        if verdicts is None:
            verdicts = self.evaluate(self.steady_state_gates())
        if guards:  # the experiment's own guards must hold before it starts, like every steady-state gate
            verdicts = [*verdicts, *self.evaluate(specs=[g.model_dump(mode="json") for g in guards])]
        gates = [GateStatus(name=v.gate, status=v.status, reason=v.reason) for v in verdicts]
        return PreflightInput(
            proposal=p, fault=REGISTRY.resolve(p), now=now, gates=gates, hypothesis_gates=[*self.cc.hypothesis_gates, *(g.name for g in guards)],
            error_budget_remaining=self.error_budget(), host=host or self.host_snapshot(),
            cube=self.cube_snapshot(cube or self.cube_state()), running_experiments=len(self.records.running()),
            revert_tested=self.revert_tested(), recent_drills=self.records.drills_since(now - 3600),
            limits=self.cc.limits, policy=self.config.policy)

    def preflight(self, p: Proposal, **kw: Any) -> tuple[PreflightResult, PreflightInput]:
        inp = self.preflight_input(p, **kw)
        return check(inp), inp

    # --- planning ---------------------------------------------------------------------------
    def plan(self, *, use_llm: bool = False, incident_causes: list[str] = ()) -> dict[str, Any]:
        now = self.clock.time()
        cube = self.cube_state()
        host = self.host_snapshot()
        verdicts = self.evaluate(self.steady_state_gates())
        w = cube.weights.standby
        last = self.records.last_run_of()
        props = [planner.score(p, now=now, last_run=last, incident_causes=list(incident_causes),
                               standby_weight_pct=w) for p in planner.generate(self.config.twin.upstream_timeout_s)]
        llm_info: dict[str, Any] = {"used": False}
        if use_llm and self.llm is not None:
            from samantha.llm.chaos_planning import propose_experiments, rank_experiments

            state = {"active": cube.active, "standby_weight": w, "gates_failing": [v.gate for v in verdicts
                                                                                  if v.status == "fail"]}
            advice = propose_experiments(state, REGISTRY.names(), REGISTRY.targets(), self.llm)
            extra, dropped = planner.from_llm(advice)
            props += [planner.score(p, now=now, last_run=last, incident_causes=list(incident_causes),
                                    standby_weight_pct=w) for p in extra]
            llm_info = {"used": True, "proposed": len(extra), "dropped": dropped, "outcome": advice.llm_outcome,
                        "error": advice.llm_error}
        ranked = planner.rank(props)
        kept, skipped = planner.dedup(ranked, self.records.keys_run_since(now - 6 * 3600))
        if use_llm and self.llm is not None and kept:
            from samantha.llm.chaos_planning import rank_experiments

            top = kept[:8]
            adv = rank_experiments({p.key: {"kind": p.kind, "target": p.target, "why": p.rationale} for p in top},
                                   self.llm)
            kept = planner.apply_llm_ranking(top, adv.ranking) + kept[8:]
            llm_info["ranking"] = adv.ranking
            llm_info["ranking_reason"] = adv.reason
        out = []
        for p in kept:
            res = check(self.preflight_input(p, cube=cube, host=host, verdicts=verdicts))
            out.append({"id": p.key, "proposal": p.model_dump(mode="json"), "verdict": res.verdict,
                        "reasons": [r.model_dump() for r in res.reasons],
                        "blast": res.blast.model_dump() if res.blast else None})
        counts = {k: sum(1 for o in out if o["verdict"] == k) for k in ("sanctioned", "escalate", "reject")}
        return {"proposals": out, "counts": counts, "skipped_recent": [p.key for p in skipped], "llm": llm_info,
                "ts": now}

    # --- running ----------------------------------------------------------------------------
    def run_template(self, t: ExperimentTemplate, *, wait: bool = True) -> dict[str, Any]:
        return self.submit(t.proposal(), guards=list(t.guards), extra_hypothesis=list(t.hypothesis), shadow=t.shadow)

    def submit(self, p: Proposal, *, guards: list[GateBase] = (), extra_hypothesis: list[str] = (),
               shadow: bool | None = None) -> dict[str, Any]:
        """Pre-flight, then run (sanctioned), queue for approval (escalate) or refuse (reject).

        With an approval queue attached this goes through the chaos graph (a waiting thread survives restarts)."""
        if self.approvals is not None:
            return self.approvals.submit(p, guards=list(guards), extra_hypothesis=list(extra_hypothesis), shadow=shadow)
        res, _ = self.preflight(p, guards=list(guards))
        if res.verdict != "sanctioned":
            return {"outcome": "rejected" if res.verdict == "reject" else "escalated",
                    "preflight": res.model_dump(mode="json"), "approval": None}
        return self.execute(p, res, guards=list(guards), extra_hypothesis=list(extra_hypothesis), shadow=shadow)

    def execute_approved(self, p: Proposal, approved_codes: set[str], approval_id: str, *,
                         guards: list[GateBase] = (), extra_hypothesis: list[str] = (),
                         shadow: bool | None = None) -> dict[str, Any]:
        """Approval is not a bypass: pre-flight runs again now; only the approved escalations are waived."""
        res, _ = self.preflight(p, guards=list(guards))
        if not may_run_approved(res, approved_codes):
            return {"outcome": "refused_at_execution", "preflight": res.model_dump(mode="json")}
        return self.execute(p, res, guards=list(guards), extra_hypothesis=list(extra_hypothesis), shadow=shadow,
                            approval_id=approval_id)

    def _configuration(self, eid: str, probe_log: Path) -> dict[str, Any]:
        ep = cube_endpoints(self.config)
        return {"samantha_api": self.api_url, "samantha_token_file": str((Path(self.config.data_dir) / "api.token")
                                                                          .absolute()),
                "samantha_ledger": str(self.config.resolve(self.cc.db).absolute()),
                "control_url": ep.control_url, "proxy_url": ep.proxy_url, "twin_state": ep.twin_state,
                "ballast_dir": str(self.config.resolve(self.cc.ballast_dir).absolute()),
                "ttl_grace_s": self.cc.ledger_grace_s, "memory_reserve_mb": self.cc.limits.memory_reserve_mb,
                "probe_log": str(probe_log), "experiment_ttl_s": 600}

    def document(self, eid: str, p: Proposal, res: PreflightResult, guards: list[GateBase], extra: list[str],
                 shadow: bool | None, approval_id: str | None = None) -> dict[str, Any]:
        """The Chaos Toolkit experiment this Cube runs for `p` now: the live slot the target names, the gates
        registered now (learned ones included), this daemon's configuration."""
        slot = None
        if p.target in ("active", "standby"):
            slot = self.cube_state().slot(p.target).name  # type: ignore[arg-type]
        hypothesis = [g for g in [*self.cc.hypothesis_gates, *extra] if g in self.registry]
        return build_document(experiment_id=eid, proposal=p, fault=parse_fault(p.kind, p.params),
                              configuration=self._configuration(eid, self.journals / f"{eid}.probes.jsonl"),
                              hypothesis=hypothesis, guards=guards, shadow=shadow, slot=slot,
                              extension={"proposal": p.model_dump(mode="json"),
                                         "preflight": res.model_dump(mode="json"), "approval_id": approval_id})

    def export(self, t: ExperimentTemplate) -> dict[str, Any]:
        """What `run_template(t)` would hand to Chaos Toolkit, without running it: the document and the
        pre-flight verdict it would meet now (an exported experiment run by hand skips Samantha's pre-flight
        and approval queue, so the verdict travels in its `extensions`)."""
        p = t.proposal()
        res, _ = self.preflight(p, guards=list(t.guards))
        doc = self.document("exp-export-" + uuid.uuid4().hex[:12], p, res, list(t.guards), list(t.hypothesis),
                            t.shadow)
        return {"experiment": doc, "verdict": res.verdict, "preflight": res.model_dump(mode="json")}

    def execute(self, p: Proposal, res: PreflightResult, *, guards: list[GateBase] = (),
                extra_hypothesis: list[str] = (), shadow: bool | None = None,
                approval_id: str | None = None) -> dict[str, Any]:
        if not self._run_lock.acquire(blocking=False):
            raise ChaosBusy("an experiment is already running")
        try:
            return self._execute(p, res, list(guards), list(extra_hypothesis), shadow, approval_id)
        finally:
            self._run_lock.release()

    def _execute(self, p: Proposal, res: PreflightResult, guards: list[GateBase], extra: list[str],
                 shadow: bool | None, approval_id: str | None) -> dict[str, Any]:
        fault = parse_fault(p.kind, p.params)
        eid = "exp-" + uuid.uuid4().hex[:16]
        doc = self.document(eid, p, res, guards, extra, shadow, approval_id)
        pdoc = {**p.model_dump(mode="json"), "key": p.key}
        self.records.start_experiment(eid, p.label(), pdoc, res.model_dump(mode="json"), str(p.kind), str(p.target),
                                      self.clock.time(), approval_id)  # write-ahead: before the runner exists
        run = self._run_document(eid, doc, fault.duration_s + 120.0)
        leftovers = self.ledger.revert_open(revert, experiment_id=eid)  # belt and braces: normally none
        entries = self.ledger.entries(eid)
        reverted_at = max((e["reverted_at"] or 0 for e in entries if e["kind"] != "shadow"), default=None) or None
        found: list[dict[str, Any]] = []
        if run.summary is not None:
            role = str(p.target)
            found = self._add_findings(eid, run.sha, fnd.derive(
                fault=fault, target=role, summary=run.summary, probe_log=_read_jsonl(run.probe_log),
                latencies=lambda a, b: self._latencies(role, a, b), reverted_at=reverted_at))
        return self._finish(eid, run, found, leftovers, entries)

    def _run_document(self, eid: str, doc: dict[str, Any], timeout: float) -> _Run:
        """One Chaos Toolkit run of `doc` in a runner subprocess (samantha.chaos.runner), bounded by `timeout`;
        its journal read back and summarised."""
        base = self.journals / eid
        doc_path, journal_path = base.with_suffix(".experiment.json"), base.with_suffix(".journal.json")
        doc_path.write_text(json.dumps(doc, indent=1))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[2]),
                                                                           os.environ.get("PYTHONPATH")]))}
        runner_log = base.with_suffix(".runner.log")
        with runner_log.open("wb") as lf:
            proc = subprocess.Popen([sys.executable, "-m", "samantha.chaos.runner", str(doc_path), str(journal_path),
                                     "--frequency", str(self.cc.probe_interval_s), "--parent", str(os.getpid())],
                                    stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    cwd=self.journals)  # a relative path in a native document is the journal dir's
        with contextlib.suppress(psutil.Error):
            self.records.set_runner(eid, proc.pid, psutil.Process(proc.pid).create_time(), str(doc_path))
        try:
            rc = proc.wait(timeout)
            state = "completed"
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait(10)
            state = "timeout"
        journal: dict[str, Any] = {}
        sha = None
        if journal_path.exists():
            raw = journal_path.read_bytes()
            sha = sha256_hex(raw)
            journal = json.loads(raw)
        summary = summarize_journal(journal) if journal else None
        if summary is not None and state == "completed":
            state = "completed" if summary.ok else ("aborted" if summary.aborted_by_hypothesis else "failed")
        elif state == "completed":
            state = "crashed"
        return _Run(rc, state, journal_path, sha, summary, self.journals / f"{eid}.probes.jsonl")

    def _add_findings(self, eid: str, sha: str | None, fs: list[fnd.Finding]) -> list[dict[str, Any]]:
        now = self.clock.time()
        found = []
        for i, f in enumerate(fs):
            fid = f"{eid}-f{i}"
            self.records.add_finding(fid, eid, f.kind, f.text, f.data, sha, now)
            found.append({"id": fid, **f.as_dict()})
        return found

    def _finish(self, eid: str, run: _Run, found: list[dict[str, Any]], leftovers: list[dict[str, Any]],
                entries: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        """Findings become gates; the experiment's record is closed with its outcome."""
        learned: list[dict[str, Any]] = []
        if run.sha is not None:
            now = self.clock.time()
            for entry in fnd.compile_gates(found, experiment_id=eid, journal_sha256=run.sha,
                                           version_of=self.records.learned_version, now=now):
                finding = next(f for f in found if f["kind"] == "path_latency"
                               and f["data"]["role"] == entry.gate.slot)  # type: ignore[attr-defined]
                self.records.add_learned_gate(entry, finding, now)
                self.registry.add(entry.gate, entry.provenance, replace=True)
                learned.append({"name": entry.gate.name, "spec": entry.gate.model_dump(mode="json"),
                                "provenance": entry.provenance.model_dump(mode="json")})
        out = {"experiment_id": eid, "outcome": run.state, "runner_exit": run.rc, "journal": str(run.journal),
               "journal_sha256": run.sha, "summary": run.summary.model_dump(mode="json") if run.summary else None,
               "findings": found, "learned_gates": learned, "leftover_reverts": leftovers,
               "injections": [{k: e[k] for k in ("id", "kind", "state", "created_at", "injected_at", "reverted_at",
                                                  "detail")} for e in entries], **extra}
        self.records.finish_experiment(eid, run.state, self.clock.time(), str(run.journal) if run.sha else None,
                                       run.sha, {k: out[k] for k in ("outcome", "findings", "learned_gates",
                                                                      "injections", *extra)})
        return out

    # --- native Chaos Toolkit documents -------------------------------------------------------
    def judge_native(self, doc: dict[str, Any]) -> tuple[NativePlan, NativeVerdict]:
        """Every activity classified against the Cube as it is now (which slot each proxy fronts), each
        injection judged by the kernel's pre-flight exactly as a proposal is (`preflight`)."""
        st = self.cube_state()
        plan = classify(doc, proxy_roles(st.active, st.slot("standby").name))
        host, verdicts = self.host_snapshot(), self.evaluate(self.steady_state_gates())
        return plan, judge(plan, lambda p: self.preflight(p, cube=st, host=host, verdicts=verdicts)[0])

    @staticmethod
    def _native_preflight(plan: NativePlan, v: NativeVerdict) -> dict[str, Any]:
        return {**v.as_dict(), "activities": [
            {"path": a.path, "name": a.name, "role": a.role, "reason": a.reason,
             "kind": a.proposal.kind if a.proposal else None, "target": a.proposal.target if a.proposal else None,
             "params": a.proposal.params if a.proposal else None} for a in plan.activities]}

    def preflight_native(self, doc: dict[str, Any]) -> dict[str, Any]:
        """What `submit_native` would decide now, running and queuing nothing: the verdict, every reason, every
        activity's classification."""
        return self._native_preflight(*self.judge_native(doc))

    def submit_native(self, doc: dict[str, Any], *, source: str = "<request>") -> dict[str, Any]:
        """A validated native document (`native_classify.parse_native`): run it (sanctioned), queue it for an
        operator with the reasons (escalate: an activity no classifier knows, a kernel escalation of one of its
        injections), or refuse it (reject). An escalated document never runs unreviewed."""
        plan, v = self.judge_native(doc)
        pre = self._native_preflight(plan, v)
        if v.verdict == "reject":
            return {"outcome": "rejected", "preflight": pre, "approval": None}
        if v.verdict == "escalate":
            item = self.approvals.ask_native(doc, pre, source) if self.approvals is not None else None
            return {"outcome": "escalated", "preflight": pre, "approval": item}
        return self.execute_native(doc, plan, pre)

    def execute_native_approved(self, doc: dict[str, Any], approved_codes: set[str],
                                approval_id: str) -> dict[str, Any]:
        """Approval is not a bypass: the document is judged again now; only the approved escalations are waived."""
        plan, v = self.judge_native(doc)
        pre = self._native_preflight(plan, v)
        if not may_run_native(v, approved_codes):
            return {"outcome": "refused_at_execution", "preflight": pre}
        return self.execute_native(doc, plan, pre, approval_id)

    def execute_native(self, doc: dict[str, Any], plan: NativePlan, pre: dict[str, Any],
                       approval_id: str | None = None) -> dict[str, Any]:
        if not self._run_lock.acquire(blocking=False):
            raise ChaosBusy("an experiment is already running")
        try:
            return self._execute_native(doc, plan, pre, approval_id)
        finally:
            self._run_lock.release()

    def _execute_native(self, doc: dict[str, Any], plan: NativePlan, pre: dict[str, Any],
                        approval_id: str | None) -> dict[str, Any]:
        eid = "exp-" + uuid.uuid4().hex[:16]
        proxy_url = cube_endpoints(self.config).proxy_url
        inj = [a for a in plan.injections if a.proposal is not None]
        faults = [parse_fault(a.proposal.kind, a.proposal.params) for a in inj]  # type: ignore[union-attr]
        timeout = max((f.duration_s for f in faults), default=0.0) + 120.0
        run_doc = native_document(doc, experiment_id=eid, proxy_url=proxy_url,
                                  configuration=self._configuration(eid, self.journals / f"{eid}.probes.jsonl"),
                                  extension={"preflight": pre, "approval_id": approval_id})
        paths = {(str(a.proposal.kind), str(a.proposal.target)) for a in inj}  # type: ignore[union-attr]
        kind, target = next(iter(paths)) if len(paths) == 1 else ("native", "cube")
        record = {"native": True, "title": doc.get("title"), "key": "native-" + sha256_hex(canonical_json(doc))[:16],
                  "injections": [a.proposal.model_dump(mode="json") for a in inj]}  # type: ignore[union-attr]
        self.records.start_experiment(eid, str(doc.get("title") or eid), record, pre, kind, target,
                                      self.clock.time(), approval_id)  # write-ahead: before the runner exists
        # toxiproxy's actions know no ledger: each classified one gets its entry (revert + TTL) before it can go in
        ttl = timeout + self.cc.ledger_grace_s
        iids = {a.path: self.ledger.intend(eid, str(a.proposal.kind), str(a.proposal.target), a.proposal.params,  # type: ignore[union-attr]
                                           {**a.undo, "proxy_url": proxy_url}, ttl)
                for a in inj if a.undo is not None}
        run = self._run_document(eid, run_doc, timeout)
        ran = {}
        for r in run.summary.activities if run.summary else []:
            ran.setdefault(r["name"], r)
        for a in inj:
            r = ran.get(a.name)
            if a.path in iids and r is not None and r["status"] == "succeeded":
                self.ledger.mark_active(iids[a.path], f"{a.name}: {a.reason}", at=fnd.iso_ts(r["end"]))
        reverts = self.ledger.revert_open(revert, experiment_id=eid)  # normally "already absent": rollbacks ran
        left = leftovers(self.config)["toxics"]  # verified on the proxy itself, not only in the ledger
        if left:
            run = dataclasses.replace(run, state="failed")
        entries = self.ledger.entries(eid)
        found: list[dict[str, Any]] = []
        if run.summary is not None:
            fs: list[fnd.Finding] = []
            probes = _read_jsonl(run.probe_log)
            for a, f in zip(inj, faults, strict=True):
                r = ran.get(a.name)
                at = fnd.iso_ts(r["end"]) if r is not None and r["status"] == "succeeded" else None
                back = next((e["reverted_at"] for e in entries if e["id"] == iids.get(a.path)), None)
                if at is not None:  # the fault stayed in as long as the document held it, not its default
                    f = f.model_copy(update={"duration_s": max(0.1, (back or self.clock.time()) - at)})
                role = str(a.proposal.target)  # type: ignore[union-attr]
                fs += [x for x in fnd.derive(fault=f, target=role, summary=run.summary, probe_log=probes,
                                             latencies=lambda s, e, role=role: self._latencies(role, s, e),
                                             reverted_at=back, injected_at=at)
                       if all(x.text != y.text for y in fs)]
            found = self._add_findings(eid, run.sha, fs)
        return self._finish(eid, run, found, reverts, entries, left_on_proxy=left, preflight=pre)

    def _latencies(self, role: str, start: float, end: float) -> np.ndarray:
        t = self.store.read_arrow(f"SELECT latency_ms FROM requests WHERE slot = ? AND ts > ? AND ts <= ? AND {JUDGED_SQL}",
                                  [role, start, end])
        return t.column(0).to_numpy(zero_copy_only=False).astype(np.float64)

    # --- crash safety -----------------------------------------------------------------------
    def recover_ledger(self) -> dict[str, Any]:
        """At start-up: stop any runner a crash left behind, then revert every open injection."""
        killed = []
        for e in self.records.running():
            pid, ct = e.get("runner_pid"), e.get("runner_create")
            if pid:
                with contextlib.suppress(psutil.Error):
                    pr = psutil.Process(pid)
                    if ct is None or abs(pr.create_time() - ct) < 0.01:
                        pr.kill()
                        killed.append(pid)
        reverted = self.ledger.revert_open(revert)
        for e in self.records.running():
            self.records.finish_experiment(e["id"], "crashed", self.clock.time(), None, None,
                                           {"outcome": "crashed", "recovered": True})
        self.last_recovery = {"runners_killed": killed, "reverted": reverted, "at": self.clock.time()}
        return self.last_recovery

    def sweep(self) -> list[dict[str, Any]]:
        """Revert open entries past their TTL (a runner that hangs, a revert that failed before); expire
        undecided approvals."""
        out = self.ledger.revert_open(revert, only_expired=True)
        if self.approvals is not None:
            self.approvals.expire_due()
        return out

    def selftest_reverts(self, kinds: tuple[str, ...] | None = None) -> dict[str, Any]:
        """Exercise each revert path once on the standby/host with a minimal fault, and verify it is gone.

        The minimal fault and its target come from each kind's registry declaration (`FaultKind.selftest`);
        by default every kind that declares one."""
        from samantha.chaos.providers import actions

        eid = "selftest-" + uuid.uuid4().hex[:8]
        conf = self._configuration(eid, self.journals / f"{eid}.probes.jsonl")
        conf["experiment_id"] = eid
        results = {}
        for k in REGISTRY.selftestable() if kinds is None else kinds:
            try:
                fk = REGISTRY[k]
                if fk.selftest is None:
                    raise ValueError(f"{k} declares no self-test")
                actions.inject(k, fk.selftest_target, {**fk.selftest, "duration_s": fk.selftest_duration_s},
                               configuration=conf)
                done = self.ledger.revert_open(revert, experiment_id=eid)
                ok = all(d["reverted"] for d in done) and self._verify_clean()
                results[k] = "ok" if ok else f"revert did not verify: {done}"
            except Exception as e:  # a kind that cannot self-test stays untested (escalated), never crashes start-up
                self.ledger.revert_open(revert, experiment_id=eid)
                results[k] = f"{type(e).__name__}: {e}"[:300]
        return {"experiment_id": eid, "results": results}

    def _verify_clean(self) -> bool:
        return not leftovers(self.config)["total"]


def _read_jsonl(p: Path) -> list[dict[str, Any]]:
    out = []
    if p.exists():
        for line in p.read_text().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out


def leftovers(config: SamanthaConfig) -> dict[str, Any]:
    """What a fault could have left on the Cube: toxics, stopped slots, stressors, ballast, noise."""
    ep = cube_endpoints(config)
    out: dict[str, Any] = {"toxics": [], "stopped": [], "stressors": [], "ballast": [], "noise": None}
    with contextlib.suppress(httpx.HTTPError, OSError, ValueError), ProxyClient(ep.proxy_url, timeout=3.0) as c:
        for name, info in c.proxies().items():
            out["toxics"] += [f"{name}/{t.name}" for t in info.toxics]
    with contextlib.suppress(OSError, ValueError, KeyError):
        st = json.loads(Path(ep.twin_state).read_text())
        out["stopped"] = [n for n, pid in st["children"].items() if is_stopped(pid)]
    out["stressors"] = [p.pid for p in stressors(ledger=str(config.resolve(config.chaos.db).absolute()))]
    bd = config.resolve(config.chaos.ballast_dir)
    out["ballast"] = [str(f) for f in bd.glob("*")] if bd.exists() else []
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
        out["noise"] = httpx.get(f"{ep.control_url}/v1/twin/stats", timeout=3.0).json().get("noise")
    noisy = bool(out["noise"] and out["noise"].get("fraction"))
    out["total"] = len(out["toxics"]) + len(out["stopped"]) + len(out["stressors"]) + len(out["ballast"]) + noisy
    return out

