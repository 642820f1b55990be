"""Where gates come from: built in, declared by a playbook, or learned from a chaos experiment.

Every registered gate carries provenance. A learned gate must name the experiment,
the hash of its journal and a version, so a finding can be traced and revoked.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from samantha.gates.spec import (
    REQUEST_METRICS,
    SLOT_CPU_METRIC,
    SLOT_INFERENCES_METRIC,
    SLOT_MEMORY_METRIC,
    STALENESS_METRICS,
    TRITON_METRICS,
    CompareGate,
    Gate,
    GateBase,
    JudgeGate,
    ResourceGate,
    SequentialGate,
    ServerGate,
    StalenessGate,
    ThresholdGate,
)

GATE_ADAPTER: TypeAdapter[Gate] = TypeAdapter(Gate)

# Metric names of the host collector (samantha/telemetry/host.py; percents are 0-100) and of the twin.
HOST_METRICS = (
    "host_cpu_percent", "host_cpu_core_percent", "host_memory_total_bytes", "host_memory_available_bytes",
    "host_memory_used_percent", "host_disk_used_bytes", "host_disk_free_bytes", "host_disk_used_percent",
    "host_load", "host_temperature_celsius",
)
TWIN_METRICS = ("input_feature_mean", SLOT_MEMORY_METRIC, SLOT_CPU_METRIC, SLOT_INFERENCES_METRIC)
# Margins for shadow-channel latency, the largest A/A odds ratio (shadow vs live) of 21 twin recordings at
# 50-400 rps, with and without a CPU burner, load average 1.2-5.7 (benchmarks/calibrate_shadow_margins.py,
# docs/gates.md): p50 median 0.85x, largest 1.22x; p99 median 1.0x, largest 1.54x. Rounded up to 0.05.
SHADOW_ODDS_P50 = 1.25
SHADOW_ODDS_P99 = 1.55
# Active-slot latency CUSUMs: an event is a request slower than the baseline quantile + 20 ms; the CUSUM is tuned
# to a rate 1.8x the null's (p50: 50% -> 90%). At 200 rps a +100 ms fault crosses log(1/alpha) in ~24 requests.
ACTIVE_LATENCY_MARGIN_MS = 20.0
ACTIVE_LATENCY_RATIO = 1.8
# Text-divergence gate: a shadow answer diverges when a quarter of its words differ beyond the A/A floor.
TEXT_DIVERGENCE_TOLERANCE = 0.25
TEXT_DIVERGENCE_MAX_RATE = 0.1
KNOWN_METRICS = frozenset((*REQUEST_METRICS, *STALENESS_METRICS.values(), *HOST_METRICS, *TWIN_METRICS,
                           *TRITON_METRICS))


class Provenance(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["builtin", "playbook", "learned"]
    playbook: str | None = Field(None, description="playbook file/name that declared it")
    experiment_id: str | None = Field(None, description="learned: the chaos experiment that produced it")
    journal_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="learned: its journal's hash")
    version: int | None = Field(None, ge=1, description="learned: bumps when the finding is refined")
    created_at: float | None = None

    @model_validator(mode="after")
    def _learned_is_traceable(self) -> Provenance:
        if self.source == "learned" and (self.experiment_id is None or self.journal_sha256 is None
                                         or self.version is None):
            raise ValueError("a learned gate needs experiment_id, journal_sha256 and version")
        return self


class RegisteredGate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    gate: Gate
    provenance: Provenance


class DuplicateGate(ValueError):
    pass


def builtin_gates() -> list[GateBase]:
    """The defaults the rollout policy and the shipped playbooks refer to by name."""
    return [
        SequentialGate(name="canary-errors", signal="errors",
                       description="canary fails more often than the incumbent (mSPRT)"),
        SequentialGate(name="canary-latency", signal="latency", quantile=0.5, channel="live",
                       description="live canary requests slower than the incumbent's median more often (mSPRT)"),
        SequentialGate(name="canary-latency-shadow", signal="latency", quantile=0.5, channel="shadow",
                       null_odds=SHADOW_ODDS_P50,
                       description="shadow-scored requests slower than the incumbent's median, beyond the shadow "
                                   "path's own overhead"),
        SequentialGate(name="canary-latency-tail", signal="latency", quantile=0.99, channel="live",
                       description="live canary requests slower than the incumbent's p99 more often (mSPRT)"),
        SequentialGate(name="canary-latency-tail-shadow", signal="latency", quantile=0.99, channel="shadow",
                       null_odds=SHADOW_ODDS_P99,
                       description="shadow-scored requests slower than the incumbent's p99, beyond the shadow "
                                   "path's own overhead"),
        SequentialGate(name="canary-divergence", signal="divergence", tolerance=0.01, max_rate=0.002,
                       description="canary outputs differ from the incumbent's (shadow-scored)"),
        # text answers (protocol openai): the divergence is a word edit distance above the incumbent's own A/A
        # floor (cube/openai_compat.py), so a sampled model's natural variation reads as about 0 and exceeds it on
        # ~1 prompt in 20 by construction; a quarter of the words changed on more than 1 prompt in 10 is a
        # different model. An LLM Cube answers a few requests a second: 30 compared answers may pass.
        SequentialGate(name="canary-text-divergence", signal="divergence", channel="shadow",
                       tolerance=TEXT_DIVERGENCE_TOLERANCE, max_rate=TEXT_DIVERGENCE_MAX_RATE, min_samples=30,
                       description="the canary's text answers differ from the incumbent's beyond the incumbent's "
                                   "own variability (A/A), on more prompts than a sampled twin would"),
        ResourceGate(name="canary-memory-growth", signal="memory_growth",
                     description="the canary's process memory grows faster than 1 MB/s beyond the incumbent's"),
        ResourceGate(name="canary-cpu-per-inference", signal="cpu_per_inference",
                     description="the canary burns 2 ms and 1.5x more CPU per inference than the incumbent"),
        JudgeGate(name="canary-latency-mwu", test="latency", window=60),
        JudgeGate(name="canary-errors-fisher", test="errors", window=60),
        JudgeGate(name="canary-divergence-bound", test="divergence", window=60, tolerance=0.01, max_rate=0.01),
        ThresholdGate(name="latency-slo-p99", metric="latency_ms", aggregate="p99", op="<=", value=250,
                      slot="active", window=60, description="active slot p99 latency SLO"),
        ThresholdGate(name="active-error-rate", metric="error_rate", op="<=", value=0.05, slot="active", window=60),
        SequentialGate(name="active-errors-cusum", signal="errors", method="cusum", slot="active", ratio=3.0,
                       alpha=1e-6, window=600, baseline=600, min_samples=500,
                       description="active slot error rate rising against its own last 10 minutes"),
        # the serving slot slower than its own recent past (CUSUM: median, tail), and whether a flip would help
        SequentialGate(name="active-latency-cusum", signal="latency", method="cusum", slot="active", quantile=0.5,
                       ratio=ACTIVE_LATENCY_RATIO, margin_ms=ACTIVE_LATENCY_MARGIN_MS, alpha=1e-6, window=30,
                       baseline=300, min_samples=50,
                       description="active slot's requests above its own median of the 5 minutes before, plus "
                                   "20 ms, far more often than half the time"),
        SequentialGate(name="active-latency-tail-cusum", signal="latency", method="cusum", slot="active",
                       quantile=0.99, ratio=5.0, margin_ms=ACTIVE_LATENCY_MARGIN_MS, alpha=1e-6, window=30,
                       baseline=300, min_samples=100,
                       description="active slot's requests above its own p99 of the 5 minutes before, plus 20 ms, "
                                   "five times as often"),
        CompareGate(name="active-slower-than-standby", metric="latency_ms", aggregate="p50", subject="active",
                    max_increase=ACTIVE_LATENCY_MARGIN_MS, window=3, min_samples=20,
                    description="the active slot's median is 20 ms above the standby's probe mirrors: a flip "
                                "would serve faster"),
        SequentialGate(name="standby-probe-latency-cusum", signal="latency", method="cusum", slot="standby",
                       channel="shadow", baseline_slot="active", quantile=0.5, ratio=ACTIVE_LATENCY_RATIO,
                       margin_ms=ACTIVE_LATENCY_MARGIN_MS, alpha=1e-6, window=30, baseline=300, min_samples=20,
                       description="the standby's probe mirrors are slow too, against the active's own past: "
                                   "a host-level slowdown, a flip would not help"),
        # Triton's own counters (scrape.targets[].slot): a fifth of the active's requests failing over a minute
        # is far above a healthy server's; the queue bounds are for a single-instance model on a small Cube
        ServerGate(name="triton-active-failure-ratio", signal="failure_ratio", slot="active", limit=0.2,
                   description="share of the active slot's Triton requests that failed (its own counters)"),
        ServerGate(name="triton-active-queue-time", signal="queue_us", slot="active", limit=50_000,
                   description="mean queue time per successful request on the active slot's Triton above 50 ms"),
        ServerGate(name="triton-canary-failure-ratio", signal="failure_ratio", slot="standby", limit=0.05,
                   description="share of the canary's Triton requests that failed (its own counters)"),
        ServerGate(name="triton-canary-queue-time", signal="queue_us", slot="standby", limit=1_000, max_ratio=2.0,
                   description="the canary's Triton queues each successful request over 1 ms and twice as long "
                               "as the incumbent's"),
        StalenessGate(name="bundle-expiry", signal="bundle_expiry", min_remaining=3600),
        StalenessGate(name="policy-age", signal="policy_age", max_age=30 * 86400),
        StalenessGate(name="last-sync", signal="last_sync", max_age=7 * 86400),
        ThresholdGate(name="host-memory", metric="host_memory_used_percent", aggregate="mean", op="<=", value=90,
                      window=30),
        ThresholdGate(name="host-disk", metric="host_disk_used_percent", aggregate="last", op="<=", value=95,
                      window=120),
        ThresholdGate(name="host-thermal", metric="host_temperature_celsius", aggregate="p90", op="<=", value=85,
                      window=30, description="90% of the sensor readings of the last 30 s at or below 85 C"),
    ]


class GateRegistry:
    def __init__(self, gates: Iterable[RegisteredGate] = ()) -> None:
        self._gates: dict[str, RegisteredGate] = {}
        for g in gates:
            self.add(g.gate, g.provenance)

    @classmethod
    def with_builtins(cls) -> GateRegistry:
        reg = cls()
        for g in builtin_gates():
            reg.add(g, Provenance(source="builtin"))
        return reg

    def add(self, gate: GateBase, provenance: Provenance, *, replace: bool = False) -> None:
        if gate.name in self._gates and not replace:
            raise DuplicateGate(f"gate {gate.name!r} already registered ({self._gates[gate.name].provenance.source})")
        self._gates[gate.name] = RegisteredGate(gate=gate, provenance=provenance)

    def get(self, name: str) -> GateBase:
        return self._gates[name].gate

    def entry(self, name: str) -> RegisteredGate:
        return self._gates[name]

    def __contains__(self, name: object) -> bool:
        return name in self._gates

    def names(self) -> list[str]:
        return sorted(self._gates)

    def entries(self) -> list[RegisteredGate]:
        return [self._gates[n] for n in self.names()]
