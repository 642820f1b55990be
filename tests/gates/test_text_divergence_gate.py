"""`canary-text-divergence`'s parameters against the A/A floor's own construction (pure: the registered gate's
mSPRT on simulated answers, with the alpha share a two-gate LLM policy gives it)."""

from __future__ import annotations

import numpy as np

from samantha.cube.openai_compat import AA_QUANTILE
from samantha.gates import sequential as seq
from samantha.gates.registry import GateRegistry
from samantha.gates.rollout_policy import RolloutPolicy
from samantha.gates.spec import SequentialGate, min_samples


def _gate() -> SequentialGate:
    policy = RolloutPolicy(gates=["canary-text-divergence", "canary-errors"])
    g = next(g for g in policy.step_gates("shadow", GateRegistry.with_builtins()) if g.name == "canary-text-divergence")
    assert isinstance(g, SequentialGate) and g.channel == "shadow" and g.signal == "divergence"
    return g


def _crosses(g: SequentialGate, diverging: np.ndarray) -> int | None:
    """The compared answer (1-based) at which the gate fails, one answer per time bin; None: never."""
    res = seq.one_sample_msprt(np.ones(len(diverging), dtype=np.int64), diverging.astype(np.int64), g.max_rate,
                               g.alpha)
    return None if not res.crossed else int(res.cross_bin) + 1


def test_a_sampled_twin_above_its_floor_on_1_prompt_in_20_is_never_failed() -> None:
    """A/A: the floor is the incumbent's AA_QUANTILE of self-distances, so an identical sampled model exceeds it on
    about 1 - AA_QUANTILE of prompts; even if every such answer counted as diverging, 2000 answers never fail."""
    g = _gate()
    rng = np.random.default_rng(15)
    runs = [_crosses(g, rng.random(2000) < 1 - AA_QUANTILE) for _ in range(200)]
    assert runs.count(None) == 200, [r for r in runs if r is not None]
    assert min_samples(g) == 30  # and it may pass after 30 compared answers


def test_gibberish_fails_within_a_handful_of_compared_answers_and_a_small_regression_later() -> None:
    g = _gate()
    assert _crosses(g, np.ones(30, dtype=bool)) <= 6  # measured on llama.cpp: failed at the 4th compared answer
    rng = np.random.default_rng(7)
    at = [_crosses(g, rng.random(400) < 0.5) for _ in range(50)]  # half the prompts answered differently
    assert all(a is not None and a <= 60 for a in at), at
