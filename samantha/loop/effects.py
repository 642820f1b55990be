"""What each action does at the Cube, how to tell it already happened, and how telemetry confirms it.

- `call_cube`: the one CubeRuntime call per action kind, with the action id as request id.
- `applied_in`: reads a Cube state to decide whether an intent already took effect (crash
  recovery reconciles with this, so nothing is done twice).
- `confirm`: the router's telemetry, not the API reply, decides whether traffic left the
  bad slot: at least `min_requests` live requests served elsewhere after the last one the
  bad bundle (or role) served. When both slots run the same bundle the requests table
  cannot tell the slots apart, so the live error rate and latency after the action must
  be back below the levels that triggered it.
"""

from __future__ import annotations

from typing import Any

from samantha.cube.protocol import CubeRuntime, CubeState
from samantha.telemetry.schema import JUDGED_SQL
from samantha.telemetry.store import TelemetryStore

CUBE_KINDS = ("flip", "quarantine", "abort_rollout", "safe_mode")  # actions with an effect at the Cube
LOCAL_KINDS = ("alert", "hold_rollout")


def snapshot(state: CubeState) -> dict[str, Any]:
    """The part of the Cube state an action's reconciliation and verification need."""
    act, sb = state.slot("active"), state.slot("standby")
    return {"active": state.active, "generation": state.generation, "active_bundle": act.bundle_id,
            "standby_bundle": sb.bundle_id, "standby_weight": state.weights.standby, "safe_mode": state.safe_mode,
            "quarantine": [q.bundle_id for q in state.quarantine], "ts": state.ts}


def call_cube(cube: CubeRuntime, row: dict[str, Any]) -> dict[str, Any]:
    """Apply the action at the Cube (idempotent by request id); returns the Cube's answer."""
    kind, rid, p = row["kind"], row["request_id"], row["proposed"]
    if kind == "flip":
        res = cube.flip(request_id=rid)
    elif kind == "quarantine":
        res = cube.quarantine(p["target_bundle"], reason=p["reason"][:1000], request_id=rid)
    elif kind == "abort_rollout":
        res = cube.set_weights(0.0, request_id=rid)
        if res.state.shadow:  # mirrored traffic still reaches the canary: off too
            res = cube.set_shadow(False, request_id=f"{rid}-shadow")
    elif kind == "safe_mode":
        res = cube.safe_mode(True, request_id=rid)
    else:
        raise ValueError(f"{kind} has no Cube call")
    return {"applied": res.applied, "generation": res.state.generation, "active": res.state.active}


def applied_in(row: dict[str, Any], state: CubeState) -> bool:
    """Whether `state` already shows the action's effect (used to reconcile an intent after a crash)."""
    kind, before, p = row["kind"], row["before"], row["proposed"]
    if kind == "flip":
        return state.active != before["active"]
    if kind == "quarantine":
        return state.is_quarantined(p["target_bundle"])
    if kind == "abort_rollout":
        return state.weights.standby == 0 and not state.shadow
    if kind == "safe_mode":
        return state.safe_mode
    return False


def _stats(store: TelemetryStore, where: str, params: list[Any]) -> dict[str, Any]:
    t = store.read_arrow(f"SELECT count(*) AS n, coalesce(avg(CASE WHEN ok THEN 0.0 ELSE 1.0 END), 0) AS err, "
                         f"quantile_cont(latency_ms, 0.95) AS p95, max(ts) AS last FROM requests "
                         f"WHERE NOT shadow AND {JUDGED_SQL} AND {where}", params)
    r = t.to_pylist()[0]
    return {"n": int(r["n"]), "error_rate": float(r["err"]), "p95_ms": r["p95"], "last_ts": r["last"]}


def confirm(row: dict[str, Any], state: CubeState, store: TelemetryStore, now: float,
            min_requests: int) -> tuple[bool, dict[str, Any]]:
    """(confirmed, evidence) for an action marked done. Pure reads; call it again until it confirms."""
    kind, before = row["kind"], row["before"]
    done_ts = row.get("done_ts") or row["created_ts"]
    if kind == "safe_mode":
        return state.safe_mode, {"method": "cube_state", "safe_mode": state.safe_mode}
    if not applied_in(row, state):
        return False, {"method": "cube_state", "reason": "the Cube state no longer shows the action's effect"}
    if kind == "flip":
        bad = before["active_bundle"]
        if bad is not None and bad != before["standby_bundle"]:
            return _traffic_left(store, "bundle = ?", [bad], "bundle != ?", [bad], done_ts, min_requests,
                                 f"bundle {bad[:12]}")
        return _health_restored(store, row, done_ts, min_requests)
    if kind == "quarantine":
        bad = row["proposed"]["target_bundle"]
        return _traffic_left(store, "bundle = ?", [bad], "bundle != ?", [bad], done_ts, min_requests,
                             f"bundle {bad[:12]}")
    if kind == "abort_rollout":
        return _traffic_left(store, "slot = 'standby'", [], "slot = 'active'", [], done_ts, min_requests,
                             "the standby slot")
    return True, {"method": "local"}


def _traffic_left(store: TelemetryStore, bad_where: str, bad_params: list[Any], good_where: str,
                  good_params: list[Any], done_ts: float, min_requests: int, what: str) -> tuple[bool, dict[str, Any]]:
    """Served elsewhere at least `min_requests` times since the later of the action and the last bad request."""
    last_bad = store.query_scalar(f"SELECT max(ts) FROM requests WHERE NOT shadow AND {JUDGED_SQL} AND {bad_where}", bad_params)
    cut = max(done_ts, last_bad) if last_bad is not None else done_ts
    good = _stats(store, f"ts > ? AND {good_where}", [cut, *good_params])
    ok = good["n"] >= min_requests
    return ok, {"method": "traffic_left", "what": what, "last_bad_ts": last_bad, "done_ts": done_ts,
                "served_elsewhere_after": good["n"], "needed": min_requests,
                "error_rate_after": round(good["error_rate"], 6), "p95_ms_after": good["p95_ms"]}


def _health_restored(store: TelemetryStore, row: dict[str, Any], done_ts: float,
                     min_requests: int) -> tuple[bool, dict[str, Any]]:
    """Same bundle on both slots: live traffic after the flip must be healthier than before it."""
    created = row["created_ts"]
    pre = _stats(store, "slot = 'active' AND ts > ? AND ts <= ?", [created - 5.0, created])
    post = _stats(store, "slot = 'active' AND ts > ?", [done_ts])
    if post["n"] < min_requests:
        return False, {"method": "health_restored", "before": pre, "after": post, "needed": min_requests}
    err_ok = post["error_rate"] <= pre["error_rate"] * 0.5 + 0.01
    lat_ok = pre["p95_ms"] is None or post["p95_ms"] is None or post["p95_ms"] <= pre["p95_ms"] * 1.2 + 5.0
    return err_ok and lat_ok, {"method": "health_restored", "before": pre, "after": post}
