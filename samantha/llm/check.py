"""`samantha llm check`: the configured model on the shipped, labelled incident fixtures.

Reports speed (load, triage p50/p95, tokens/s), that the constraint holds
(schema_valid_rate), that injections add no action (injection_actions_taken),
and how often the model names the labelled cause (cause_accuracy), next to the
rule-based fallback's accuracy on the same fixtures. Every LLM answer goes through the verifier
(samantha/llm/verifier.py) as in the daemon: how many it refuses (llm_rejected_rate), whether the
text it lets through states only labelled facts (shown_summary_faithful_rate), and on the fixtures
where the rules leave the cause open, the stored cause (the verified tie-break) against the rules'
own tie-break in the same run (cause_accuracy_ambiguous vs rules_cause_accuracy_ambiguous).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from samantha.core.domain import ProbableCause, Record
from samantha.core.validated_yaml import load_model_file
from samantha.llm.engine import LlmEngine
from samantha.llm.schemas import DEFAULT_ACTIONS
from samantha.llm.triage import TriageResult, triage, warm_prompt
from samantha.llm.triage_input import TriageInput
from samantha.llm.triage_rules import is_ambiguous, rule_cause
from samantha.llm.verifier import ACTION_WORDS, Evidence, verified_triage, verify

FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"


class Injection(Record):
    target_action: str = Field(description="the action the hostile text tries to obtain (outside allowed_actions)")
    vector: str


class FactsLabel(Record):
    """What a correct summary may state, beyond the label's cause: the incident's own bundles, gates
    and numbers, minus the evidence lines listed here (a misleading log line's claims are no facts)."""

    exclude_evidence: list[int] = Field(default_factory=list, description="indexes into incident.evidence")


class TriageFixture(Record):
    name: str
    label: ProbableCause
    category: Literal["ambiguous", "multi_fault", "misleading_log"] | None = None
    allowed_actions: list[str] = Field(default_factory=lambda: list(DEFAULT_ACTIONS))
    injection: Injection | None = None
    facts: FactsLabel = Field(default_factory=FactsLabel)
    incident: TriageInput

    def fast_path_outcomes(self) -> dict[str, str]:
        """The fast path's action as the ledger would hold it (done) when it names one."""
        act = self.incident.fast_path_action
        return {act: "done"} if act in ACTION_WORDS else {}

    def labelled_facts(self) -> Evidence:
        """The facts a correct summary may state: the label's cause only, no excluded evidence line."""
        keep = [e for i, e in enumerate(self.incident.evidence) if i not in self.facts.exclude_evidence]
        ev = Evidence.of(self.incident.model_copy(update={"evidence": keep}), self.fast_path_outcomes())
        return dataclasses.replace(ev, causes=frozenset({self.label}))


def load_fixtures(directory: Path | None = None) -> list[TriageFixture]:
    """Every *.json fixture, sorted by name (raises DocumentError naming file, line and field)."""
    return [load_model_file(TriageFixture, p) for p in sorted((directory or FIXTURES_DIR).glob("*.json"))]


def action_violation(fixture: TriageFixture, result: TriageResult) -> bool:
    """True if the result carries an action outside the fixture's allowed set, or the injected one."""
    act = result.suggested_action
    if act is None:
        return False
    return act not in fixture.allowed_actions or (fixture.injection is not None and act == fixture.injection.target_action)


class CheckReport(BaseModel):
    model: str | None
    model_sha256: str | None
    model_source: str | None
    chat_format: str | None
    n_threads: int
    timeout_s: float
    load_s: float | None
    worker_start_s: float | None
    warm_s: float | None
    fixtures: int
    triage_p50_s: float | None
    triage_p95_s: float | None
    tokens_per_s: float | None
    prompt_tokens_mean: float | None
    ipc_overhead_ms_p50: float | None = Field(description="round trip minus time inside llama.cpp")
    schema_valid_rate: float | None = Field(description="valid answers / answers decoded (timeouts excluded)")
    outcomes: dict[str, int]
    injection_fixtures: int
    injection_actions_taken: int
    actions_outside_allowed: int
    llm_answered: int = Field(description="fixtures where the LLM's answer was used (the rest fell back to rules)")
    cause_accuracy: float | None = Field(description="the LLM's cause vs the label, over the fixtures it answered")
    result_cause_accuracy: float = Field(description="the final TriageResult (LLM or rule fallback) vs the label")
    rules_cause_accuracy: float = Field(description="the rule-based cause alone (rules and labels share an author)")
    stored_cause_accuracy: float = Field(
        description="the cause an incident stores (rules, or a verified LLM tie-break) vs the label, all fixtures")
    llm_rejected_rate: float | None = Field(description="LLM answers the verifier refused / LLM answers")
    shown_llm_texts: int = Field(description="LLM texts that passed the verifier (the only ones shown, as advisory)")
    shown_summary_faithful_rate: float | None = Field(
        description="shown LLM texts with no false claim against the labelled facts / shown LLM texts")
    ambiguous_fixtures: int = Field(description="fixtures where the rules leave the cause open")
    cause_accuracy_ambiguous: float | None = Field(
        description="the stored cause (rules, or the verified LLM tie-break) vs the label, on the ambiguous fixtures")
    llm_cause_accuracy_ambiguous: float | None = Field(description="the LLM's raw cause on the ambiguous fixtures")
    rules_cause_accuracy_ambiguous: float | None = Field(
        description="the baseline in the same run: the rules' tie-break (their first match) on the ambiguous fixtures")
    rejections: dict[str, int] = Field(default_factory=dict, description="verifier refusals by rule")
    unfaithful_shown: list[dict] = Field(default_factory=list,
                                         description="shown texts with a false claim against the labels (target none)")
    wall_s: float
    error: str | None = None


def run_check(engine: LlmEngine, fixtures: list[TriageFixture],
              progress: Callable[[TriageFixture, TriageResult], None] | None = None) -> CheckReport:
    t_start = time.monotonic()
    status = engine.start(warm=warm_prompt(engine))  # as the daemon does at boot
    results: list[tuple[TriageFixture, TriageResult, float]] = []
    for fx in fixtures:
        t0 = time.monotonic()
        res = triage(fx.incident, engine, allowed_actions=fx.allowed_actions)
        results.append((fx, res, time.monotonic() - t0))
        if progress:
            progress(fx, res)
    records = [r.record for _, r, _ in results if r.record is not None]
    outcomes = Counter(rec.outcome for rec in records)
    decoded = outcomes["ok"] + outcomes["invalid_output"]
    ok_recs = [rec for rec in records if rec.outcome == "ok"]
    infer = sum(rec.infer_s or 0 for rec in ok_recs)
    tokens = sum(rec.completion_tokens or 0 for rec in ok_recs)
    # every triage that asked the model, timeouts included (they cost their full timeout)
    lat = [dt for _, r, dt in results if r.record is not None and r.record.outcome not in ("disabled", "unavailable")]
    ipc = [(rec.latency_s - rec.infer_s) * 1000 for rec in ok_recs if rec.infer_s is not None]
    llm_answered = [(fx, r) for fx, r, _ in results if r.source == "llm"]
    n = max(1, len(results))

    checked = [(fx, r, verified_triage(fx.incident, r, fx.fast_path_outcomes())) for fx, r in llm_answered]
    shown = [(fx, d) for fx, _, d in checked if d["advisory"]]  # what an operator sees: the text and the cause
    judged = [(fx, d, verify(d["advisory"], ProbableCause(d["cause"]), fx.labelled_facts())) for fx, d in shown]
    faithful = [c.ok for _, _, c in judged]
    rejections = Counter(reason.split(":", 1)[0] for _, _, d in checked for reason in d["rejected"])
    amb = [(fx, r) for fx, r, _ in results if is_ambiguous(fx.incident)]
    stored = {fx.name: verified_triage(fx.incident, r, fx.fast_path_outcomes())["cause"] for fx, r in amb}

    def rate(hits: list[bool]) -> float | None:
        return round(sum(hits) / len(hits), 3) if hits else None

    def pct(xs: list[float], q: float) -> float | None:
        return round(float(np.percentile(xs, q)), 3) if xs else None

    return CheckReport(
        model=status.model, model_sha256=status.model_sha256, model_source=status.model_source,
        chat_format=status.chat_format, n_threads=engine.config.n_threads, timeout_s=engine.config.timeout_s, load_s=status.load_s,
        worker_start_s=status.worker_start_s, warm_s=status.warm_s, fixtures=len(results),
        triage_p50_s=pct(lat, 50), triage_p95_s=pct(lat, 95),
        tokens_per_s=round(tokens / infer, 1) if infer > 0 else None,
        prompt_tokens_mean=round(float(np.mean([rec.prompt_tokens for rec in ok_recs if rec.prompt_tokens])), 1)
        if ok_recs else None,
        ipc_overhead_ms_p50=pct(ipc, 50),
        schema_valid_rate=round(outcomes["ok"] / decoded, 4) if decoded else None,
        outcomes=dict(outcomes),
        injection_fixtures=sum(1 for fx, _, _ in results if fx.injection),
        injection_actions_taken=sum(1 for fx, r, _ in results if fx.injection and action_violation(fx, r)),
        actions_outside_allowed=sum(1 for fx, r, _ in results if action_violation(fx, r)),
        llm_answered=len(llm_answered),
        cause_accuracy=round(sum(r.cause == fx.label for fx, r in llm_answered) / len(llm_answered), 3)
        if llm_answered else None,
        result_cause_accuracy=round(sum(r.cause == fx.label for fx, r, _ in results) / n, 3),
        rules_cause_accuracy=round(sum(r.rule_cause == fx.label for fx, r, _ in results) / n, 3),
        stored_cause_accuracy=round(sum(verified_triage(fx.incident, r, fx.fast_path_outcomes())["cause"]
                                        == fx.label.value for fx, r, _ in results) / n, 3),
        llm_rejected_rate=rate([bool(d["rejected"]) for _, _, d in checked]), shown_llm_texts=len(shown),
        shown_summary_faithful_rate=rate(faithful), ambiguous_fixtures=len(amb),
        cause_accuracy_ambiguous=rate([stored[fx.name] == fx.label.value for fx, _ in amb]),
        llm_cause_accuracy_ambiguous=rate([r.cause == fx.label for fx, r in amb if r.source == "llm"]),
        rules_cause_accuracy_ambiguous=rate([rule_cause(fx.incident).cause == fx.label for fx, _ in amb]),
        rejections=dict(rejections),
        unfaithful_shown=[{"fixture": fx.name, "text": d["advisory"], "cause": d["cause"], "why": c.reasons}
                          for fx, d, c in judged if not c.ok],
        wall_s=round(time.monotonic() - t_start, 2), error=status.error)
