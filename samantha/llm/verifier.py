"""The verifier of LLM claims: an answer is held against the evidence before anyone sees it.

Rules (each refusal names the rule and the offending claim):
- `cause`: the cause must be one the evidence allows (`candidate_causes`), and the text may not
  name another cause's signature words (a misleading log line talking the model into "network");
- `identifier`: every bundle or gate-like name (a hyphenated or digit-bearing token) must be one
  of the evidence's bundles or gates;
- `slot`: a slot role named must be one the evidence involves;
- `action`: an action named must be one that was taken (or refused) on this incident;
- `contradiction`: a sentence about an action may not call it failed when its recorded outcome
  is a success, nor successful when it failed;
- `number`: every number must round from one in the evidence (percent forms included).

Pure, deterministic, no model: a larger model gets this same verifier, not a looser one.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from samantha.core.domain import ProbableCause
from samantha.llm.triage import TriageResult
from samantha.llm.triage_input import TriageInput
from samantha.llm.triage_rules import candidate_causes, is_ambiguous, rule_cause

SUCCESS = frozenset({"verified", "done", "ok"})
FAILURE = frozenset({"failed", "refused", "reverted"})
ACTION_WORDS: dict[str, tuple[str, ...]] = {
    "flip": ("flip", "flipped", "flipping", "switched traffic", "switched over"),
    "quarantine": ("quarantine", "quarantined", "quarantining"),
    "abort_rollout": ("abort", "aborted", "aborting", "rolled back", "rollback", "roll back"),
    "hold_rollout": ("hold", "held", "paused"),
    "safe_mode": ("safe mode",),
    "alert": ("alert", "alerted", "paged"),
}
CAUSE_WORDS: dict[ProbableCause, tuple[str, ...]] = {
    ProbableCause.input_drift: ("drift", "distribution shift"),
    ProbableCause.resource_exhaustion: ("memory", "cpu", "disk", "oom", "exhaust"),
    ProbableCause.network_fault: ("network", "connection reset", "packet"),
    ProbableCause.slot_down: ("crash", "crashed", "not serving", "slot down", "slot is down"),
    ProbableCause.policy_expired: ("policy", "expired", "expiry"),
}
# the words that back a cause in the LLM's text (a tie-break needs them)
SUPPORT_WORDS: dict[ProbableCause, tuple[str, ...]] = {
    **CAUSE_WORDS, ProbableCause.bad_bundle: ("bad bundle", "defective", "the bundle", "new bundle", "weights"),
    ProbableCause.slot_down: (*CAUSE_WORDS[ProbableCause.slot_down], "restart", "refused", "process")}
FAIL_WORDS = re.compile(r"\b(fail(ed|s|ure)?|did not|didn't|could not|couldn't|unsuccessful|not work(ed)?|no effect)\b")
SUCCESS_WORDS = re.compile(r"\b(succeeded|successful(ly)?|worked|restored|resolved|fixed)\b")
NUMBER = re.compile(r"(?<![A-Za-z0-9.])(\d+(?:\.\d+)?)(\s*%)?")
# a name a model could invent: letters with hyphens or digits (resnet-v9, active-error-burst, v8)
IDENT = re.compile(r"(?<![A-Za-z0-9.-])([A-Za-z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)+|[A-Za-z]+\d[A-Za-z0-9]*)(?![A-Za-z0-9-])")
PLAIN_HYPHENATED = frozenset({"fast-path", "follow-up", "error-rate", "re-check", "p95", "p99", "p50", "5xx",
                              "http-500", "roll-out", "roll-back"})
SLOT_WORDS = {"active": "active", "standby": "standby", "canary": "standby"}


@dataclass(frozen=True)
class Evidence:
    """What an incident's record holds, as sets the verifier checks claims against."""

    bundles: frozenset[str]
    gates: frozenset[str]
    slots: frozenset[str]
    actions: dict[str, str]  # kind -> recorded outcome (verified | done | failed | refused | ...)
    numbers: tuple[float, ...]
    causes: frozenset[ProbableCause]

    @classmethod
    def of(cls, inp: TriageInput, actions: dict[str, str] | None = None,
           extra_numbers: Iterable[float] = ()) -> Evidence:
        """From the triage input the model saw, and the ledger outcomes of the incident's actions."""
        bundles = {b for b in (inp.active_bundle, inp.standby_bundle) if b}
        bundles |= {v.bundle for v in inp.verdicts if v.bundle} | {c.bundle for c in inp.changes if c.bundle}
        slots = {v.slot for v in inp.verdicts if v.slot}
        acts = dict(actions or {})
        if inp.fast_path_action and inp.fast_path_action in ACTION_WORDS and inp.fast_path_action not in acts:
            acts[inp.fast_path_action] = "done"
        if "flip" in acts or "abort_rollout" in acts:
            slots |= {"active", "standby"}  # a flip or abort moves traffic between both roles
        nums: list[float] = [*extra_numbers]
        for v in inp.verdicts:
            nums += [x for x in (v.observed, v.threshold) if x is not None]
            nums += _numbers_in(v.detail)
        nums += [c.age_s for c in inp.changes] + [n for c in inp.changes for n in _numbers_in(c.detail)]
        nums += [n for line in inp.evidence for n in _numbers_in(line)]
        if inp.canary_weight is not None:
            nums.append(inp.canary_weight)
        return cls(frozenset(bundles), frozenset(v.gate for v in inp.verdicts), frozenset(slots), acts,
                   tuple(nums), frozenset(candidate_causes(inp)))

    def knows_number(self, x: float, decimals: int, percent: bool) -> bool:
        for e in self.numbers:
            for form in ((e * 100,) if percent else (e, e * 100)):
                if math.isfinite(form) and round(form, decimals) == x:
                    return True
        return False


@dataclass(frozen=True)
class Check:
    ok: bool
    reasons: list[str] = field(default_factory=list)


def _numbers_in(text: str) -> list[float]:
    return [float(m.group(1)) for m in NUMBER.finditer(text or "")]


def _strip_known(text: str, names: Iterable[str]) -> str:
    """The text without the evidence's own names (whole names only: `ab-cd` does not vouch for `ab-cd-ef`)."""
    for n in sorted({n for n in names if n}, key=len, reverse=True):
        text = re.sub(rf"(?<![A-Za-z0-9-]){re.escape(n)}(?![A-Za-z0-9-])", " ", text, flags=re.IGNORECASE)
    return text


def verify(text: str, cause: ProbableCause | None, ev: Evidence) -> Check:
    """Every claim in `text` (and the `cause`) against `ev`. Faithful text passes; anything else is refused."""
    reasons: list[str] = []
    rest = _strip_known(text, [*ev.bundles, *ev.gates])  # a gate's own name (host-memory) claims nothing
    low = rest.lower()
    if cause is not None and cause is not ProbableCause.unknown and cause not in ev.causes:
        reasons.append(f"cause: {cause.value} is not one the evidence allows ({', '.join(sorted(ev.causes))})")
    for c, words in CAUSE_WORDS.items():
        if c not in ev.causes and any(re.search(rf"\b{re.escape(w)}", low) for w in words):
            reasons.append(f"cause: the text names {c.value}, which the evidence does not allow")
    for m in IDENT.finditer(rest):
        tok = m.group(1)
        if tok.lower() not in PLAIN_HYPHENATED:
            reasons.append(f"identifier: {tok!r} is no bundle or gate of the evidence")
    for word, role in SLOT_WORDS.items():
        if re.search(rf"\b{word}\b", low) and role not in ev.slots:
            reasons.append(f"slot: the {role} slot is not part of the evidence")
    for sentence in re.split(r"[.;]\s*", low):
        for kind, words in ACTION_WORDS.items():
            if not any(re.search(rf"\b{re.escape(w)}\b", sentence) for w in words):
                continue
            outcome = ev.actions.get(kind)
            if outcome is None:
                reasons.append(f"action: no {kind} was taken on this incident")
            elif outcome in SUCCESS and FAIL_WORDS.search(sentence):
                reasons.append(f"contradiction: the {kind} is recorded as {outcome}, the text says it failed")
            elif outcome in FAILURE and SUCCESS_WORDS.search(sentence):
                reasons.append(f"contradiction: the {kind} is recorded as {outcome}, the text says it worked")
    for m in NUMBER.finditer(rest):
        raw, pct = m.group(1), bool(m.group(2))
        decimals = len(raw.split(".")[1]) if "." in raw else 0
        if not ev.knows_number(float(raw), decimals, pct):
            reasons.append(f"number: {raw}{'%' if pct else ''} is not in the evidence")
    return Check(not reasons, list(dict.fromkeys(reasons)))


def verified_triage(inp: TriageInput, res: TriageResult, actions: dict[str, str]) -> dict[str, Any]:
    """The rules' cause, the LLM's words only if every claim checks out, and the verified tie-break.

    Returns the triage detail: `cause` stays the rules' unless the rules are ambiguous and the
    LLM's verified cause is one of their candidates; `advisory` holds the LLM text that passed
    the verifier (None otherwise); `rejected` says why it did not."""
    rc = rule_cause(inp)
    out: dict[str, Any] = {"method": "rules", "cause": rc.cause.value, "rule": rc.rule,
                           "candidates": [c.value for c in candidate_causes(inp)], "ambiguous": is_ambiguous(inp),
                           "advisory": None, "llm_cause": None, "rejected": [], "suggested_action": None}
    if res.source != "llm":
        return out
    ev = Evidence.of(inp, actions)
    check = verify(res.summary, res.cause, ev)
    out["llm_cause"] = res.cause.value
    if not check.ok:
        out["rejected"] = check.reasons
        return out
    grounded = _strip_known(res.summary, [*ev.bundles, *ev.gates]) != res.summary or any(
        ev.knows_number(float(m.group(1)), len(m.group(1).split(".")[1]) if "." in m.group(1) else 0,
                        bool(m.group(2))) for m in NUMBER.finditer(res.summary))
    if not grounded:  # true of nothing in particular: not worth an operator's attention
        out["rejected"] = ["grounded: the text names no gate, bundle or number of the evidence"]
        return out
    # a tie-break needs the LLM's own words for its choice, not only the enum it picked
    low = res.summary.lower()
    backed = any(re.search(rf"\b{re.escape(w)}", low) for w in SUPPORT_WORDS.get(res.cause, ()))
    tie = out["ambiguous"] and res.cause.value in out["candidates"] and backed
    cause = res.cause.value if tie else out["cause"]
    # shown beside the stored cause, the text may not argue for another one (a candidate the rules did not pick)
    beside = verify(res.summary, None, dataclasses.replace(ev, causes=frozenset({ProbableCause(cause)})))
    if not beside.ok:
        out["rejected"] = [f"{r} (the stored cause is {cause})" for r in beside.reasons]
        return out
    out.update(advisory=res.summary, suggested_action=res.suggested_action, method="rules+llm_advisory")
    if cause != out["cause"]:
        out.update(cause=cause, method="llm_tiebreak")
    return out
