"""Progressive-rollout policy (data) and the step judge the rollout controller calls.

One alpha for the whole rollout: the policy's `alpha` is split evenly over the
sequential gates of all its steps, and every sequential test is anchored at the
rollout start (the shadow phase included), so checking after every bin, at every
step, never spends more than `alpha` in total.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from samantha.gates import sequential as seq
from samantha.gates.actions import AbortRollout, Action, Alert, Quarantine
from samantha.gates.engine import GateEngine
from samantha.gates.evaluate import EvalContext, canary, incumbent
from samantha.gates.registry import GATE_ADAPTER, GateRegistry
from samantha.gates.spec import Duration, Gate, GateBase, ResourceGate, SequentialGate, ServerGate
from samantha.gates.verdict import Status, Verdict
from samantha.gates.windows import RequestFrame

GateRef = str | Gate
DEFAULT_GATES: tuple[str, ...] = ("canary-errors", "canary-latency", "canary-latency-shadow", "canary-latency-tail",
                                  "canary-latency-tail-shadow", "canary-divergence", "canary-memory-growth",
                                  "canary-cpu-per-inference")


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RolloutStep(_M):
    weight: float = Field(gt=0, le=100, description="percent of live traffic on the standby slot")
    gates: list[GateRef] = Field(default_factory=list, description="extra gates for this step")
    min_samples: int = Field(200, ge=1, description="canary requests seen during the step before it may pass")
    min_duration: Duration = Field(30.0, ge=0)


class ShadowPhase(_M):
    """Mirror 100% of traffic to the standby and score it before any user sees it."""

    enabled: bool = True
    min_samples: int = Field(2000, ge=1)
    min_duration: Duration = Field(20.0, ge=0)


class EarlySuccess(_M):
    """A step (never the soak) may pass before its min_duration when the evidence shows the canary within a
    margin of the incumbent.

    The test: an mSPRT with the canary and incumbent swapped, H0 "the canary's odds of a request slower than
    the incumbent's pre-rollout median are at least `margin_odds` times the incumbent's". Crossing 1/beta
    rejects it, anytime-valid from the rollout start: P(a step passes early | the canary is slower by the
    margin or more) <= beta for the whole rollout. Every gate must still pass and the step's min_samples be
    met; errors and outputs keep their own gates (too few events to prove equivalence on).
    """

    enabled: bool = Field(False, description="off by default: steps wait their min_duration")
    margin_odds: float = Field(1.5, gt=1, le=10, description="latency odds ratio the canary may be within")
    beta: float = Field(0.01, gt=0, lt=0.5, description="bound on the chance of an early pass of a canary "
                                                          "slower by margin_odds or more")
    min_fraction: float = Field(0.25, ge=0, le=1, description="share of the step's min_duration always waited")
    bin: Duration = Field(0.2, gt=0)


class GreyZone(_M):
    """A phase still inconclusive `after_s` seconds past its min_duration is a grey zone: the rollout holds (no
    step advances, judging goes on, a failing gate still aborts) and asks a human through the approval queue.
    Approve: the phase passes. Deny, or no decision before the item expires (`chaos.approval_ttl_s`): abort,
    traffic back to the active slot, no quarantine (nothing was proven bad). While it is enabled and the Cube
    has an approval queue it replaces the controller's stall rule; without a queue (chaos mode off) the stall
    rule (`sre.rollout_max_step_s`) aborts instead."""

    enabled: bool = Field(True, description="hold and ask rather than stall-abort an inconclusive phase")
    after_s: Duration = Field(600.0, ge=0, description="inconclusive this long past the phase's min_duration")


def _default_steps() -> list[RolloutStep]:
    return [RolloutStep(weight=w) for w in (1, 5, 25, 50, 100)]


class RolloutPolicy(_M):
    name: str = "default"
    version: int = Field(1, ge=1)
    alpha: float = Field(0.001, gt=0, lt=0.5, description="false-abort budget for the whole rollout")
    gates: list[GateRef] = Field(default_factory=lambda: list(DEFAULT_GATES), description="judged at every step")
    shadow: ShadowPhase = ShadowPhase()
    steps: list[RolloutStep] = Field(default_factory=_default_steps)
    soak: Duration = Field(300.0, ge=0, description="time at 100% before the rollout completes")
    early_success: EarlySuccess = EarlySuccess()
    grey_zone: GreyZone = GreyZone()
    on_failure: list[Action] = Field(default_factory=lambda: [AbortRollout(), Quarantine(),
                                                              Alert(severity="critical")])

    @field_validator("steps")
    @classmethod
    def _increasing(cls, steps: list[RolloutStep]) -> list[RolloutStep]:
        if not steps:
            raise ValueError("at least one step")
        ws = [s.weight for s in steps]
        if ws != sorted(set(ws)):
            raise ValueError(f"step weights must strictly increase, got {ws}")
        if ws[-1] != 100:
            raise ValueError("the last step must be 100")
        return steps

    def resolve(self, refs: Sequence[GateRef], registry: GateRegistry) -> list[GateBase]:
        out = []
        for r in refs:
            if isinstance(r, str):
                if r not in registry:
                    raise KeyError(f"unknown gate {r!r}")
                out.append(registry.get(r))
            else:
                out.append(GATE_ADAPTER.validate_python(r) if isinstance(r, dict) else r)
        return out

    def step_gates(self, step: int | Literal["shadow"], registry: GateRegistry) -> list[GateBase]:
        """Gates judged at `step` (index into steps, or "shadow"), with the rollout's alpha split over
        every sequential gate the policy can ever run."""
        every = self.resolve(self.gates, registry)
        all_seq = {g.name for g in every if isinstance(g, SequentialGate)}
        for s in self.steps:
            all_seq |= {g.name for g in self.resolve(s.gates, registry) if isinstance(g, SequentialGate)}
        share = self.alpha / max(1, len(all_seq))
        gates = every + ([] if step == "shadow" else self.resolve(self.steps[step].gates, registry))
        return [g.model_copy(update={"alpha": share}) if isinstance(g, SequentialGate) else g for g in gates]


class StepVerdict(_M):
    step: int | Literal["shadow"]
    weight: float
    status: Status
    reason: str
    ts: float
    canary_samples: int
    min_samples: int
    elapsed_s: float
    min_duration_s: float
    verdicts: list[Verdict]
    actions: list[Action] = Field(default_factory=list, description="policy.on_failure when status is fail")


def judge_step(engine: GateEngine, policy: RolloutPolicy, step: int | Literal["shadow"], now: float, *,
               rollout_start: float, step_start: float, registry: GateRegistry | None = None,
               canary_bundle: str | None = None) -> StepVerdict:
    """Pass: every gate passes, enough canary samples in this step, and enough time (soak at 100%).
    Fail: any gate fails (the rollout's on_failure actions are attached). Otherwise inconclusive."""
    registry = registry or GateRegistry.with_builtins()
    gates = policy.step_gates(step, registry)
    verdicts = engine.evaluate(gates, now, rollout_start=rollout_start, canary_bundle=canary_bundle)
    if step == "shadow":
        weight, need, min_dur = 0.0, policy.shadow.min_samples, policy.shadow.min_duration
    else:
        s = policy.steps[step]
        weight, need = s.weight, s.min_samples
        min_dur = max(s.min_duration, policy.soak) if s.weight == 100 else s.min_duration
    rf = RequestFrame.fetch(engine.reader, step_start, now, canary_bundle)
    seen = canary(rf, step_start, now, EvalContext(now, rollout_start, canary_bundle), True).n
    elapsed = now - step_start
    failed = [v for v in verdicts if v.status == "fail"]
    # Any gate may fail the step; only the gates fed by this rollout's main evidence must pass:
    # with shadow scoring the live-canary gates are advisory (a 1% canary sees few requests),
    # without it the shadow-channel gates have nothing to judge. Resource gates only ever fail a step: a
    # small canary may serve too little for a CPU figure, and the soak is what waits for slow leaks. So do the
    # model server's own counters (server gates): a scrape interval may hold too few canary requests.
    shadowing = policy.shadow.enabled
    blocking = {g.name for g in gates
                if not isinstance(g, ResourceGate | ServerGate)
                and not (isinstance(g, SequentialGate) and ((g.channel == "live" and shadowing)
                                                            or (g.channel == "shadow" and not shadowing)))}
    pending = [v for v in verdicts if v.status == "inconclusive" and v.gate in blocking]
    early: str | None = None
    es = policy.early_success
    if (es.enabled and not failed and not pending and seen >= need and min_dur * es.min_fraction <= elapsed < min_dur
            and (step == "shadow" or policy.steps[step].weight < 100)):
        early = within_margin(engine, es, now, rollout_start=rollout_start, canary_bundle=canary_bundle)
    if failed:
        status: Status = "fail"
        reason = "; ".join(f"{v.gate}: {v.reason}" for v in failed)
    elif early is not None:
        status, reason = "pass", f"early success after {elapsed:.1f}s: {early}"
    elif pending or seen < need or elapsed < min_dur:
        status = "inconclusive"
        why = [f"{v.gate}: {v.reason}" for v in pending]
        if seen < need:
            why.append(f"{seen} canary samples < {need}")
        if elapsed < min_dur:
            why.append(f"{elapsed:.1f}s < {min_dur:.0f}s in step")
        reason = "; ".join(why)
    else:
        status, reason = "pass", f"{len(verdicts)} gates pass, {seen} samples, {elapsed:.0f}s"
    return StepVerdict(step=step, weight=weight, status=status, reason=reason, ts=now, canary_samples=seen,
                       min_samples=need, elapsed_s=elapsed, min_duration_s=min_dur, verdicts=verdicts,
                       actions=list(policy.on_failure) if status == "fail" else [])


EARLY_BASELINE_S = 120.0


def within_margin(engine: GateEngine, es: EarlySuccess, now: float, *, rollout_start: float,
                  canary_bundle: str | None) -> str | None:
    """A reason when the canary's latency is shown within `margin_odds` of the incumbent's (see EarlySuccess)."""
    rf = RequestFrame.fetch(engine.reader, rollout_start - EARLY_BASELINE_S, now, canary_bundle)
    ctx = EvalContext(now, rollout_start, canary_bundle)
    base = incumbent(rf, rollout_start - EARLY_BASELINE_S, rollout_start)
    if base.n < 50:
        return None
    thr = float(np.quantile(base.latency_ms, 0.5))
    c, i = canary(rf, rollout_start, now, ctx, True), incumbent(rf, rollout_start, now)
    nbins = max(1, math.ceil((now - rollout_start) / es.bin))
    n_c, x_c = seq.bin_counts(c.ts, rollout_start, es.bin, nbins, c.latency_ms > thr)
    n_i, x_i = seq.bin_counts(i.ts, rollout_start, es.bin, nbins, i.latency_ms > thr)
    # roles swapped: rejecting "incumbent/canary odds <= 1/margin" is rejecting "canary >= margin x incumbent"
    res = seq.two_sample_msprt(n_i, x_i, n_c, x_c, es.beta, null_odds=1.0 / es.margin_odds)
    if not res.crossed:
        return None
    return (f"canary latency within x{es.margin_odds:g} odds of the incumbent's (mSPRT log {res.log_m_max:.2f} >= "
            f"{res.threshold:.2f}, false-promotion bound {es.beta:g})")
