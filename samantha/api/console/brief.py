"""Plain-words views for the console: an approval's decision brief, its outcome, a rollout's progress.

Pure functions over the records the pages already read (approval items, the daemon's status), so the
templates only lay out sentences and numbers; an operator never has to read nested JSON to decide.
"""

from __future__ import annotations

from typing import Any

from samantha.reporting.report import fmt_secs

# The approval states a page stops following at; "approved" alone means the experiment still runs.
FINAL = frozenset({"executed", "denied", "expired", "refused", "failed"})
TARGETS = {"active": "the active slot (live traffic)", "standby": "the standby slot",
           "router": "the router (both slots' paths)", "cube": "the whole Cube"}
PATHS = {"active": "the active slot's path", "standby": "the standby slot's path", "both": "both slots' paths",
         "none": "no data path"}


def pct(x: float | None) -> str:
    return "unknown" if x is None else f"{x:.0%}" if x >= 0.01 or x == 0 else f"{x:.1%}"


def approval_brief(a: dict[str, Any], gates_now: list[dict[str, Any]], now: float) -> dict[str, Any]:
    """What, where, how long; why escalated; blast radius; revert plan; health now; expiry."""
    p = a.get("proposal") or {}
    pre = a.get("preflight") or {}
    b = a.get("blast") or pre.get("blast") or {}
    health = a.get("health") or {}
    fault = pre.get("fault") or {}
    duration = b.get("duration_s") or fault.get("duration_s")
    reasons = [{"rule": r.get("rule") or "-", "code": r["code"], "severity": r["severity"], "message": r["message"]}
               for r in pre.get("reasons", [])]
    codes = {r["code"] for r in reasons}
    params = {k: v for k, v in (p.get("params") or {}).items() if k != "duration_s"}
    what = f"Inject {str(p.get('kind', '?')).replace('_', ' ')} into {TARGETS.get(str(p.get('target')), p.get('target'))}"
    if params:
        what += " (" + ", ".join(f"{k} {v}" for k, v in params.items()) + ")"
    budget = health.get("error_budget_remaining")
    live_gates = bool(gates_now)
    if not gates_now:  # decided, or no live verdicts (Cube unreachable): the snapshot taken at request time
        gates_now = health.get("gates") or []
    left = a.get("expires_at", 0) - now
    return {
        "what": what,
        "slot": p.get("target"), "path": ", ".join(b.get("touches") or []) or "-",
        "duration": fmt_secs(duration) if duration else "unknown",
        "reasons": reasons,
        "blast": {"live_share": b.get("live_share"), "traffic_share": b.get("traffic_share"),
                  "role": PATHS.get(b.get("role"), b.get("role")), "path_down": bool(b.get("path_down")),
                  "active_only_path": b.get("role") in ("active", "both") and bool(b.get("traffic_share", 0) >= 1.0),
                  "error_budget": budget, "svg": blast_svg(b.get("live_share"), b.get("traffic_share"), budget)},
        "revert": {"plan": b.get("revert") or a.get("revert_plan") or "none: this fault kind has no revert path",
                   "reversible": b.get("reversible", bool(a.get("revert_plan"))),
                   "tested": "revert-untested" not in codes and bool(b.get("reversible", a.get("revert_plan")))},
        "gates": (gates := [{"name": g.get("gate") or g.get("name"), "status": g.get("status"),
                             "light": light(g.get("status")), "reason": g.get("reason", "")} for g in gates_now]),
        "lights": {c: sum(g["light"] == c for g in gates) for c in ("green", "amber", "red")},
        "health_live": live_gates,
        "expires_at": a.get("expires_at"), "expires_in": fmt_secs(max(left, 0)), "expired": left <= 0,
    }


def light(status: str | None) -> str:
    return {"pass": "green", "fail": "red"}.get(status or "", "amber")


def blast_svg(live_share: float | None, traffic_share: float | None, budget: float | None) -> str:
    """Three bars: live traffic touched, the target path's share, error budget left. Static, no script."""
    rows = [("live traffic touched", live_share, "#cf222e"), ("target path touched", traffic_share, "#bc4c00"),
            ("error budget left", budget, "#1a7f37")]
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="345" height="78" viewBox="0 0 345 78" role="img" '
           'aria-label="blast radius: ' + "; ".join(f"{t} {pct(v)}" for t, v, _ in rows) + '">']
    for i, (label, v, colour) in enumerate(rows):
        y = 4 + i * 25
        w = 0 if v is None else max(0.0, min(1.0, v)) * 150
        out.append(f'<text x="0" y="{y + 13}" font-size="11" fill="#1f2328">{label}</text>'
                   f'<rect x="125" y="{y}" width="150" height="17" fill="#eaeef2" stroke="#8c959f"/>'
                   f'<rect x="125" y="{y}" width="{w:.1f}" height="17" fill="{colour}"/>'
                   f'<text x="282" y="{y + 13}" font-size="11" fill="#1f2328">{pct(v)}</text>')
    return "".join(out) + "</svg>"


def outcome(a: dict[str, Any], progress: dict[str, Any] | None) -> dict[str, Any]:
    """Where the approved experiment is: the phase in one word, the injections, findings and gates learned."""
    status = a.get("status")
    res = a.get("result") or {}
    injections = res.get("injections") or (progress or {}).get("injections") or []
    if status == "pending":
        phase = "waiting for a decision"
    elif status == "approved":
        phase = "running" if progress else "starting"
    elif status == "executed":
        phase = res.get("outcome") or "completed"
    else:
        phase = status or "?"
    return {"phase": phase, "final": status in FINAL, "experiment_id": res.get("experiment_id") or
            ((progress or {}).get("experiment") or {}).get("id"),
            "injections": [{"kind": i.get("kind"), "state": i.get("state")} for i in injections],
            "reverted": bool(injections) and all(i.get("state") == "reverted" for i in injections),
            "findings": [f.get("text") or f.get("kind") for f in res.get("findings") or []],
            "learned": [g.get("name") for g in res.get("learned_gates") or []],
            "error": res.get("error") or (res.get("preflight") or {}).get("verdict") if status in
            ("failed", "refused") else None,
            "decision": a.get("decision") or {}}


def rollout_progress(st: dict[str, Any], now: float) -> dict[str, Any] | None:
    """A rollout in words and numbers: phase, step of steps, weight, samples against needed, gates, soak left."""
    ro = st.get("rollout") or {}
    r = ro.get("rollout")
    if not r:
        return None
    v = ro.get("last_verdict") or (r.get("step_verdicts") or [None])[-1] or {}
    steps = r.get("steps") or []
    step = r.get("step")
    soak_left = None
    if r.get("phase") == "soak" and v:
        soak_left = max(0.0, (v.get("min_duration_s") or 0) - (v.get("elapsed_s") or 0))
    return {"label": r.get("bundle_label"), "phase": r.get("phase"), "reason": r.get("reason", ""),
            "step": "shadow" if r.get("phase") == "shadow" else (f"{step + 1} of {len(steps)}" if step is not None
                                                                  else "-"),
            "weight": ro.get("weight", 0.0), "steps": steps, "at": step,
            "samples": v.get("canary_samples"), "needed": v.get("min_samples"),
            "elapsed": v.get("elapsed_s"), "min_duration": v.get("min_duration_s"),
            "gates": [{"name": g.get("gate"), "status": g.get("status"), "light": light(g.get("status")),
                       "reason": g.get("reason", "")} for g in v.get("verdicts") or []],
            "soak_left": fmt_secs(soak_left) if soak_left is not None else None,
            "final": r.get("phase") in ("promoted", "aborted", "failed", "idle"), "updated": now}
