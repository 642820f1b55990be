"""Findings from a run (journal + probe log + telemetry of the run), and gates compiled from them.

A finding is a sentence with its numbers ("200 ms latency on the standby path breached
guard standby-p99 in 3.1 s", "rollback drill took 340 ms"). A finding about a path's
latency compiles into a learned threshold gate on that path, set between the baseline and
what the fault produced, with provenance (experiment id, journal hash, version).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from samantha.chaos.experiment import JournalSummary
from samantha.chaos.fault_kinds import REGISTRY, FaultBase
from samantha.gates.registry import Provenance, RegisteredGate
from samantha.gates.spec import ThresholdGate

MIN_ROWS = 20


@dataclass
class Finding:
    kind: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "data": self.data}


def iso_ts(s: str | None) -> float | None:
    if not s:
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(s).timestamp()
    except ValueError:
        return None


def _output(summary: JournalSummary, prefix: str) -> dict[str, Any] | None:
    for a in summary.activities:
        if (a["name"] or "").startswith(prefix) and isinstance(a.get("output"), dict):
            return a["output"]
    return None


def derive(*, fault: FaultBase, target: str, summary: JournalSummary, probe_log: list[dict[str, Any]],
           latencies: Callable[[float, float], np.ndarray], reverted_at: float | None,
           injected_at: float | None = None) -> list[Finding]:
    """`latencies(start, end)`: latency_ms of the faulted path's requests (live + shadow) in (start, end].
    `injected_at`: when the injection is no Samantha provider (a native document's toxiproxy action, whose
    output carries no time), the time its activity ended, from the journal."""
    kind = fault.kind  # type: ignore[attr-defined]
    label = _label(fault, target)
    out: list[Finding] = []
    inj = _output(summary, "inject:")
    injected_at = inj.get("at") if inj else injected_at
    fails = [p for p in probe_log if p.get("status") == "fail"]
    if fails and injected_at is not None:
        first = min(fails, key=lambda p: p["at"])
        after = max(0.0, first["at"] - injected_at)
        data = {"gate": first["gate"], "after_s": round(after, 2), "reason": first.get("reason"),
                "values": first.get("values"), "detected_at": first["at"], "injected_at": injected_at}
        if reverted_at is not None:
            data["abort_s"] = round(max(0.0, reverted_at - first["at"]), 3)
        out.append(Finding("breach", f"{label} breached gate {first['gate']} in {after:.1f} s"
                           + (f"; fault reverted {data['abort_s']:.2f} s after detection" if "abort_s" in data
                              else ""), data))
    elif injected_at is not None and summary.ok:
        out.append(Finding("held", f"the Cube's steady state held through {label} for {fault.duration_s:g} s",
                           {"duration_s": fault.duration_s}))
    if kind == "rollback_drill" and inj:
        out.append(Finding("drill", f"rollback drill took {inj['total_ms']:.0f} ms (flip {inj['flip_ms']:.0f} ms, "
                           f"back {inj['back_ms']:.0f} ms)", dict(inj)))
    restart = _output(summary, "slot-restarts")
    if kind == "kill_slot":
        if restart:
            out.append(Finding("restart", f"killed {target} slot restarted and answered healthy in "
                               f"{restart['restart_s']:.1f} s", dict(restart)))
        else:
            out.append(Finding("no_restart", f"killed {target} slot was not seen healthy again within "
                               f"{fault.restart_timeout_s:g} s", {}))  # type: ignore[attr-defined]
    if injected_at is not None and REGISTRY[kind].learns_latency:
        end = reverted_at or (injected_at + fault.duration_s)
        base = latencies(injected_at - 30.0, injected_at)
        during = latencies(injected_at + 0.5, end)
        if base.size >= MIN_ROWS and during.size >= MIN_ROWS:
            b99, d99 = float(np.percentile(base, 99)), float(np.percentile(during, 99))
            out.append(Finding("path_latency", f"{label}: {target} path p99 {b99:.0f} ms -> {d99:.0f} ms "
                               f"({during.size} requests)", {"baseline_p99_ms": round(b99, 2),
                                                             "fault_p99_ms": round(d99, 2), "n": int(during.size),
                                                             "n_baseline": int(base.size), "role": target,
                                                             "from": injected_at, "to": end}))
    failed_rb = [r for r in summary.rollbacks if r["status"] != "succeeded"]
    if failed_rb:
        out.append(Finding("revert_failed", f"rollback of {label} failed: {failed_rb[0].get('exception')}",
                           {"rollbacks": failed_rb}))
    return out


def _label(fault: FaultBase, target: str) -> str:
    return fault.describe(target)


def compile_gates(findings: list[dict[str, Any]], *, experiment_id: str, journal_sha256: str,
                  version_of: Callable[[str], int], now: float) -> list[RegisteredGate]:
    """Learned gates from findings that carry a measurable threshold."""
    gates = []
    for f in findings:
        if f["kind"] != "path_latency":
            continue
        d = f["data"]
        b, x = d["baseline_p99_ms"], d["fault_p99_ms"]
        if not (math.isfinite(b) and math.isfinite(x)) or x < 1.5 * b + 5:
            continue  # the fault did not move the path enough to tell apart from normal
        threshold = round(b + (x - b) / 2, 1)
        name = f"learned-{d['role']}-p99-{experiment_id[-8:]}"[:80]
        gate = ThresholdGate(name=name, metric="latency_ms", aggregate="p99", op="<=", value=threshold,
                             slot=d["role"], include_shadow=True, window=10.0, min_samples=MIN_ROWS,
                             description=f"learned from {experiment_id}: {f['text']}")
        prov = Provenance(source="learned", experiment_id=experiment_id, journal_sha256=journal_sha256,
                          version=version_of(name) + 1, created_at=now)
        gates.append(RegisteredGate(gate=gate, provenance=prov))
    return gates
