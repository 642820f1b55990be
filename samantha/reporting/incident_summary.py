"""The incident's summary, written by code from its evidence: always present, always true.

What failed (each gate, its number against the threshold, the sample sizes, the window), on
which bundle and slot, what Samantha did and when, and the verified effect. No model is
involved: every sentence is a rendering of a field of the incident or of its ledger rows, so
the headline an operator reads cannot claim more than the record holds. The LLM's words, when
they pass the verifier (samantha/llm/verifier.py), are shown below this, labelled advisory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

_DONE = {"verified": "verified", "done": "done, awaiting verification", "intent": "intended, not yet applied",
         "failed": "FAILED", "reverted": "withdrawn"}
_VERB = {"flip": "flipped traffic to the standby slot", "quarantine": "quarantined the bundle",
         "abort_rollout": "aborted the rollout (canary weight to 0)", "safe_mode": "entered safe mode",
         "alert": "raised an alert", "hold_rollout": "held the rollout"}


def _clock(ts: float | None) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts)) + f".{int((ts % 1) * 10)}Z" if ts else "?"


def _num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@dataclass(frozen=True)
class IncidentSummary:
    headline: str
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join([self.headline, *self.lines])[:2000]


def subject(incident: dict[str, Any]) -> tuple[str, str | None]:
    """(slot role or scope, bundle id) the incident is about, from its grouping key."""
    scope, _, bundle = str(incident.get("key") or "").partition(":")
    role = {"canary": "standby"}.get(scope, scope)
    return role or "host", bundle or None


def gate_line(v: dict[str, Any]) -> str:
    """One failing verdict: the number against its bound, the sample sizes, the window."""
    values = v.get("values") or {}
    samples = ", ".join(f"{k}={n}" for k, n in (v.get("samples") or {}).items()) or "n=?"
    w = v.get("window") or (None, None)
    span = f"{w[1] - w[0]:.3g} s window to {_clock(w[1])}" if w[0] is not None and w[1] is not None else "window ?"
    if "observed" in values and "bound" in values:
        num = f"{values.get('aggregate') or ''} {_num(values['observed'])} vs threshold {_num(values['bound'])}"
    else:
        num = str(v.get("reason") or "")[:160]
    return f"{v.get('gate')} ({v.get('kind')}): {num.strip()} ({samples}; {span})"


def action_line(a: dict[str, Any], opened: float) -> str:
    kind, status = a.get("kind"), a.get("status")
    when = a.get("done_ts") or a.get("created_ts")
    after = f"+{when - opened:.2f} s" if when and opened else "?"
    target = (a.get("proposed") or {}).get("target_bundle")
    out = f"{_VERB.get(kind, kind)}{f' (target bundle {target[:16]})' if target and kind == 'quarantine' else ''}" \
          f" at {_clock(when)} ({after} after opening): {_DONE.get(status, status)}"
    ev = (a.get("result") or {}).get("verification") or {}
    if status == "verified" and ev.get("method") == "traffic_left":
        out += (f"; traffic left {ev.get('what')}: its last request at {_clock(ev.get('last_bad_ts'))}, "
                f"{ev.get('served_elsewhere_after')} requests served elsewhere since")
        if ev.get("error_rate_after") is not None:
            out += f" with error rate {_num(float(ev['error_rate_after']))}"
    elif status == "verified" and ev.get("method") == "health_restored":
        b, af = ev.get("before") or {}, ev.get("after") or {}
        out += f"; error rate {_num(b.get('error_rate'))} before, {_num(af.get('error_rate'))} after"
    elif status == "failed":
        out += f" ({str((a.get('result') or {}).get('reason') or '')[:160]})"
    return out


def summarize(incident: dict[str, Any], actions: list[dict[str, Any]]) -> IncidentSummary:
    """The summary of one incident record and its ledger rows (any subset; unknown fields render as '?')."""
    role, bundle = subject(incident)
    verdicts = list((incident.get("evidence") or {}).values())
    where = f"{role} slot, bundle {bundle}" if bundle else role
    gates = ", ".join(incident.get("gates") or []) or "no gate"
    headline = f"{gates} failed on the {where}."
    lines = [gate_line(v) + "." for v in verdicts[:4]]
    opened = float(incident.get("opened_ts") or 0.0)
    mine = sorted((a for a in actions if a.get("kind") != "alert"), key=lambda a: a.get("created_ts") or 0)
    if mine:
        lines.append("Samantha " + "; then ".join(action_line(a, opened) for a in mine) + ".")
    else:
        refused = {v for r in incident.get("refusals") or [] for v in r.get("violated") or []}
        lines.append("Samantha took no action at the Cube" + (f" (refused: {', '.join(sorted(refused))})"
                                                              if refused else "") + ".")
    if incident.get("status") == "closed" and incident.get("closed_ts"):
        lines.append(f"Resolved at {_clock(incident['closed_ts'])}, {incident['closed_ts'] - opened:.1f} s "
                     f"after opening: gates quiet and actions settled.")
    else:
        lines.append("Open.")
    return IncidentSummary(headline, lines)
