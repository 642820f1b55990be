"""For the offline act: rollouts the Cube ran on a simulated clock, persisted as the controller persists
them (`DuckRolloutStore`, every transition a revision), with bundles whose manifests carry `created_at`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from samantha.rollout.record import DuckRolloutStore, RolloutRecord


def _bundle(root: Path, name: str, created_at: float) -> str:
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "manifest.json").write_text(json.dumps({"name": "sensor-mlp", "version": name,
                                                 "created_at": datetime.fromtimestamp(created_at, UTC).isoformat()}))
    return str(d)


def _verdict(step: int, status: str, ts: float) -> dict[str, Any]:
    return {"step": step, "weight": [1.0, 5.0][step], "status": status, "reason": f"canary errors {status}", "ts": ts,
            "canary_samples": 400, "min_samples": 200, "elapsed_s": 120.0, "min_duration_s": 120.0,
            "verdicts": [{"gate": "canary-errors", "kind": "error_rate", "status": status, "reason": "demo",
                          "ts": ts, "window": [ts - 120, ts]}]}


def record_rollout(rollouts: DuckRolloutStore, bundles: Path, name: str, *, created_at: float, started_at: float,
                   regresses: bool) -> str:
    """A rollout from `started_at`: promoted after 15 min, or, when the bundle `regresses`, failing its 5%
    step at +5 min and snapped back 0.6 s later. Returns the outcome."""
    end = started_at + (300.6 if regresses else 900.0)
    doc: dict[str, Any] = {
        "id": f"ro-{name}", "request_id": f"demo-{name}", "bundle_ref": name, "bundle_id": f"{name}-sha256",
        "bundle_label": f"sensor-mlp {name}", "bundle_path": _bundle(bundles, name, created_at),
        "expires_at": created_at + 30 * 86400, "policy_name": "default", "policy_version": 1,
        "steps": [1.0, 5.0, 25.0, 50.0, 100.0], "phase": "loading", "started_at": started_at,
        "updated_at": started_at, "rev": 1}
    rollouts.save(RolloutRecord.model_validate(doc))
    passed = [_verdict(0, "pass", started_at + 150)]
    if regresses:
        fail_ts = started_at + 300
        final = {**doc, "phase": "aborted", "rev": 2, "updated_at": end, "ended_at": end, "snapped": True,
                 "reason": "regression at step 1 (5%): canary-errors", "step_verdicts": [*passed,
                                                                                        _verdict(1, "fail", fail_ts)],
                 "decisions": [{"ts": fail_ts + 0.6, "kind": "weights", "target": name, "reason": "snap back",
                                "result": "done", "corrective": True}]}
    else:
        final = {**doc, "phase": "promoted", "rev": 2, "updated_at": end, "ended_at": end, "step_verdicts": passed}
    rollouts.save(RolloutRecord.model_validate(final))
    return final["phase"]
