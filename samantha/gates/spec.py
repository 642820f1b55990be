"""Gate specifications: a pydantic discriminated union on `kind`.

A gate states what "healthy" means over a window of telemetry. It never acts;
playbooks and the rollout judge turn verdicts into actions.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

from samantha.core.domain import SlotRole

_DUR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(v: object) -> float:
    """Seconds from 250ms / 30s / 5m / 1h / 2d or a bare number of seconds."""
    if isinstance(v, bool):
        raise ValueError("a duration is a number of seconds or a string like 30s, 5m, 1h")
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str) and (m := _DUR.match(v)):
        return float(m.group(1)) * _UNIT[m.group(2)]
    raise ValueError(f"not a duration: {v!r} (use a number of seconds or 250ms, 30s, 5m, 1h, 2d)")


Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(float, when_used="json"),
                     Field(json_schema_extra={"anyOf": [{"type": "number"},
                                                        {"type": "string", "pattern": _DUR.pattern}]})]

# Per-request metrics come from the `requests` table; any other metric name is a series in `samples`.
REQUEST_METRICS = ("latency_ms", "error_rate", "divergence", "rps")
Aggregate = Literal["mean", "min", "max", "last", "sum", "count", "rate",
                    "p50", "p90", "p95", "p99", "p999"]
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,79}$"


def quantile_of(aggregate: str) -> float | None:
    return {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p999": 0.999}.get(aggregate)


class GateBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN, description="unique gate name")
    description: str = ""
    window: Duration = Field(60.0, gt=0, description="data window ending at evaluation time")
    min_samples: int | None = Field(None, ge=1, description="fewer samples => inconclusive (never pass)")

    def needs_requests(self) -> bool:
        return False

    def metrics(self) -> tuple[str, ...]:
        """Samples-table metric names this gate reads."""
        return ()


class ThresholdGate(GateBase):
    """An aggregate of one metric over the window compared to a fixed value."""

    kind: Literal["threshold"] = "threshold"
    metric: str = Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    aggregate: Aggregate = "mean"
    op: Literal["<", "<=", ">", ">="] = "<="
    value: float
    slot: SlotRole | None = Field(None, description="request metrics only: restrict to one slot")
    include_shadow: bool = Field(False, description="request metrics only: count shadow-scored rows")
    labels: dict[str, str] = Field(default_factory=dict, description="samples metrics only: label filter")

    def needs_requests(self) -> bool:
        return self.metric in REQUEST_METRICS

    def metrics(self) -> tuple[str, ...]:
        return () if self.needs_requests() else (self.metric,)

    def default_min_samples(self) -> int:
        if not self.needs_requests():
            return 1
        q = quantile_of(self.aggregate)
        return max(50, round(1.0 / (1.0 - q))) if q else 50


class CompareGate(GateBase):
    """Canary (standby) against incumbent (active): a point comparison, Flagger-style."""

    kind: Literal["compare"] = "compare"
    metric: Literal["error_rate", "latency_ms"]
    aggregate: Aggregate = "mean"
    max_increase: float | None = Field(None, ge=0, description="canary - incumbent, in metric units")
    max_ratio: float | None = Field(None, gt=0, description="canary / incumbent")
    include_shadow: bool = True
    subject: SlotRole = Field("standby", description=(
        "the slot whose regression fails the gate: the canary against the incumbent (standby), or the active "
        "slot against the standby's probe mirrors (active: would a flip serve better?)"))

    @model_validator(mode="after")
    def _one_bound(self) -> CompareGate:
        if self.max_increase is None and self.max_ratio is None:
            raise ValueError("set max_increase and/or max_ratio")
        return self

    def needs_requests(self) -> bool:
        return True

    def default_min_samples(self) -> int:
        return 100


class JudgeGate(GateBase):
    """Two-sample statistical judge over a fixed window (scipy).

    latency: Mann-Whitney U (canary stochastically greater) with Hodges-Lehmann shifts (ms and x-fold);
    errors: Fisher's exact test on the 2x2 table (one-sided);
    divergence: exact binomial test that the share of diverging outputs exceeds max_rate.
    A failure needs statistical significance AND a practically relevant effect.
    """

    kind: Literal["judge"] = "judge"
    test: Literal["latency", "errors", "divergence"]
    alpha: float = Field(0.01, gt=0, lt=0.5)
    min_shift_ms: float = Field(0.0, ge=0, description="latency: smallest Hodges-Lehmann shift that matters")
    min_shift_ratio: float = Field(0.05, ge=0, description="latency: smallest relevant slowdown factor - 1 (log-scale HL)")
    min_increase: float = Field(0.005, ge=0, description="errors: smallest error-rate increase that matters")
    tolerance: float = Field(0.0, ge=0, description="divergence: outputs differing by more than this diverge")
    max_rate: float = Field(0.01, ge=0, lt=1, description="divergence: allowed share of diverging outputs")
    include_shadow: bool = True

    def needs_requests(self) -> bool:
        return True

    def default_min_samples(self) -> int:
        return 50


class SequentialGate(GateBase):
    """A continuously checkable test: one false-alarm budget for the whole rollout.

    msprt: a mixture likelihood-ratio martingale (always valid; P(ever alarm | no
    regression) <= alpha however often it is checked). errors/latency compare the
    canary with the incumbent conditionally on each time bin's totals (Fisher's
    noncentral hypergeometric), so a load burst hitting both slots is not evidence.
    cusum: Page's CUSUM against a baseline rate, for long-running change detection
    (threshold log(1/alpha), average run length ~ 1/alpha bins; no single-budget guarantee).
    """

    kind: Literal["sequential"] = "sequential"
    signal: Literal["errors", "latency", "divergence"]
    method: Literal["msprt", "cusum"] = "msprt"
    alpha: float = Field(0.00025, gt=0, lt=0.5, description="this gate's share of the rollout's alpha")
    quantile: float = Field(0.95, gt=0, lt=1, description="latency: exceedance of the incumbent's quantile")
    tolerance: float = Field(0.0, ge=0, description="divergence: outputs differing by more than this diverge")
    max_rate: float = Field(0.002, gt=0, lt=1, description="divergence: allowed share of diverging outputs")
    bin: Duration = Field(0.2, gt=0, description="time-bin width for the conditional test")
    baseline: Duration = Field(120.0, gt=0, description="latency: incumbent window before the test, for the threshold")
    channel: Literal["all", "live", "shadow"] = Field(
        "all", description="canary rows judged: live traffic, shadow-scored mirrors, or both")
    null_odds: float = Field(1.0, ge=1.0, description=(
        "tolerated event-odds ratio before it counts as a regression; a shadow path measures its own "
        "latency overhead (twin A/A, 21 recordings: up to 1.22x odds above the median, 1.54x above p99)"))
    slot: SlotRole = Field("standby", description="cusum: the slot watched")
    baseline_slot: SlotRole | None = Field(None, description=(
        "cusum: the slot whose recent past sets the baseline (default: the watched slot); active with "
        "slot: standby judges the standby's probes against what the active served before"))
    margin_ms: float = Field(0.0, ge=0, description=(
        "cusum latency: the threshold is the baseline quantile plus this, so only a practically relevant "
        "slowdown counts as an event (host jitter on a 1 ms model is not a regression)"))
    ratio: float = Field(2.0, gt=1, description="cusum: the rate multiplier it is tuned to detect")
    window: Duration = Field(3600.0, gt=0, description="lookback when no rollout start is known")

    def needs_requests(self) -> bool:
        return True

    def default_min_samples(self) -> int:
        return 200


class DriftGate(GateBase):
    """Distribution drift of a metric against a baseline window (Evidently-like defaults)."""

    kind: Literal["drift"] = "drift"
    metric: str = Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    labels: dict[str, str] = Field(default_factory=dict)
    slot: SlotRole | None = None
    method: Literal["auto", "ks", "wasserstein", "psi"] = "auto"
    threshold: float | None = Field(None, gt=0, description="ks: p-value below; wasserstein (normed)/psi: above")
    baseline_offset: Duration | None = Field(None, gt=0, description="baseline ends this long before now (default: window)")
    baseline_window: Duration | None = Field(None, gt=0, description="baseline length (default: window)")
    large_sample: int = Field(1000, ge=1, description="auto: KS up to this many samples, Wasserstein above")
    bins: int = Field(10, ge=2, le=100, description="psi: quantile bins of the baseline")

    @model_validator(mode="after")
    def _baseline_before_window(self) -> DriftGate:
        if self.baseline_offset is not None and self.baseline_offset < self.window:
            raise ValueError("baseline_offset must be >= window, or the baseline overlaps the window tested")
        return self

    @property
    def offset(self) -> float:
        return self.baseline_offset if self.baseline_offset is not None else self.window

    @property
    def baseline_len(self) -> float:
        return self.baseline_window if self.baseline_window is not None else self.window

    def needs_requests(self) -> bool:
        return self.metric in REQUEST_METRICS

    def metrics(self) -> tuple[str, ...]:
        return () if self.needs_requests() else (self.metric,)

    def default_min_samples(self) -> int:
        return 30


# Slot process telemetry the runtime reports per slot (labels: slot, role, bundle): resident memory and counters.
SLOT_MEMORY_METRIC = "slot_memory_rss_bytes"
SLOT_CPU_METRIC = "slot_cpu_seconds_total"
SLOT_INFERENCES_METRIC = "slot_inferences_total"


class ResourceGate(GateBase):
    """The canary's process against the incumbent's: memory growth (a leak is a slope, not a level) and CPU
    per inference, from the slot processes' own samples.

    memory_growth: least-squares slope of each slot's resident memory over the window, in MB/s; fails when
    the canary's exceeds both max_slope_mb_per_s and the incumbent's slope by that much.
    cpu_per_inference: CPU seconds over inferences served in the window, in ms; fails when the canary's
    exceeds the incumbent's by max_increase_ms and by the factor max_ratio.
    """

    kind: Literal["resource"] = "resource"
    signal: Literal["memory_growth", "cpu_per_inference"]
    window: Duration = Field(20.0, gt=0)
    min_span: Duration = Field(8.0, gt=0, description="memory_growth: the canary's samples must span this long")
    max_slope_mb_per_s: float = Field(1.0, gt=0, description="memory_growth: tolerated growth, MB/s")
    max_increase_ms: float = Field(2.0, ge=0, description="cpu_per_inference: tolerated extra CPU ms")
    max_ratio: float = Field(1.5, gt=1, description="cpu_per_inference: tolerated factor")
    min_inferences: int = Field(100, ge=1, description="cpu_per_inference: inferences each slot served")

    @model_validator(mode="after")
    def _span_in_window(self) -> ResourceGate:
        if self.min_span > self.window:
            raise ValueError("min_span must be <= window")
        return self

    def metrics(self) -> tuple[str, ...]:
        return (SLOT_MEMORY_METRIC,) if self.signal == "memory_growth" else (SLOT_CPU_METRIC, SLOT_INFERENCES_METRIC)

    def default_min_samples(self) -> int:
        return 8


# Triton's own counters, scraped per slot (`scrape.targets[].slot`); prometheus_client's parser stores counters
# under their OpenMetrics names, so Triton's `nv_inference_request_success` is `nv_inference_request_success_total`.
TRITON_SUCCESS = "nv_inference_request_success_total"
TRITON_FAILURE = "nv_inference_request_failure_total"  # one series per failure reason (BACKEND, REJECTED, ...)
TRITON_QUEUE_US = "nv_inference_queue_duration_us_total"
TRITON_COMPUTE_US = "nv_inference_compute_infer_duration_us_total"
TRITON_METRICS = (TRITON_SUCCESS, TRITON_FAILURE, TRITON_QUEUE_US, TRITON_COMPUTE_US, "nv_inference_count_total",
                  "nv_inference_exec_count_total", "nv_inference_request_duration_us_total",
                  "nv_inference_pending_request_count")
# signal -> (numerator counters, denominator counters); each is the sum of the counters' increases
SERVER_SIGNALS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "failure_ratio": ((TRITON_FAILURE,), (TRITON_SUCCESS, TRITON_FAILURE)),
    # Triton adds queue and compute durations for successful requests only: per successful request
    "queue_us": ((TRITON_QUEUE_US,), (TRITON_SUCCESS,)),
    "compute_us": ((TRITON_COMPUTE_US,), (TRITON_SUCCESS,)),
}


class ServerGate(GateBase):
    """A slot's model server judged by its own counters (Triton's nv_inference_*, scraped per slot).

    Each counter's increase over the window (resets, a restart or a model reload, handled), summed over the
    slot's series (models, versions, failure reasons; `labels` narrows them, e.g. to one model), then a ratio:
    failure_ratio: failed / all requests; queue_us, compute_us: queue / compute time per successful request, us.
    Fails when the ratio exceeds `limit` (and, with max_ratio, the incumbent's times max_ratio); fewer requests
    than min_samples in the window is inconclusive.
    The slot is the role at scrape time; an active-slot window starts no earlier than the last flip.
    """

    kind: Literal["server"] = "server"
    signal: Literal["failure_ratio", "queue_us", "compute_us"]
    limit: float = Field(gt=0, description="fails when the signal is above this (a ratio, or microseconds)")
    slot: SlotRole = Field("active", description="the slot role whose server is judged")
    labels: dict[str, str] = Field(default_factory=dict, description="label filter, e.g. {model: sensor}")
    window: Duration = Field(60.0, gt=0, description="at least two scrape intervals: an increase needs 2 samples")
    max_ratio: float | None = Field(None, gt=1, description=(
        "slot standby: fail only when the canary's value is also above the incumbent's (the active slot's "
        "server, same window) times this: a regression, with `limit` as the floor that matters"))

    @model_validator(mode="after")
    def _ratio_on_standby(self) -> ServerGate:
        if self.max_ratio is not None and self.slot != "standby":
            raise ValueError("max_ratio compares the standby (canary) with the active slot: set slot: standby")
        return self

    def metrics(self) -> tuple[str, ...]:
        num, den = SERVER_SIGNALS[self.signal]
        return tuple(dict.fromkeys((*num, *den)))

    def default_min_samples(self) -> int:
        return 20


STALENESS_METRICS = {
    "last_sync": "samantha_last_sync_timestamp_seconds",
    "policy_age": "samantha_policy_issued_timestamp_seconds",
    "bundle_expiry": "cube_bundle_expires_timestamp_seconds",
    "fleet_divergence": "cube_fleet_divergence",
}


class StalenessGate(GateBase):
    """Freshness of what the Cube runs on: last sync, policy age, bundle expiry, fleet divergence.

    Reads the latest value of a gauge: a timestamp (epoch s) for the first three,
    a divergence score for the last. No value known => inconclusive.
    """

    kind: Literal["staleness"] = "staleness"
    signal: Literal["last_sync", "policy_age", "bundle_expiry", "fleet_divergence"]
    metric: str | None = Field(None, pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$", description="default by signal")
    labels: dict[str, str] = Field(default_factory=dict)
    max_age: Duration | None = Field(None, gt=0, description="last_sync, policy_age")
    min_remaining: Duration | None = Field(None, ge=0, description="bundle_expiry: time left before expiry")
    max_divergence: float | None = Field(None, ge=0, description="fleet_divergence")
    window: Duration = Field(30 * 86400.0, gt=0, description="how far back to look for the latest value")

    @model_validator(mode="after")
    def _bound_for_signal(self) -> StalenessGate:
        need = {"last_sync": "max_age", "policy_age": "max_age", "bundle_expiry": "min_remaining",
                "fleet_divergence": "max_divergence"}[self.signal]
        if getattr(self, need) is None:
            raise ValueError(f"signal {self.signal} needs {need}")
        return self

    @property
    def metric_name(self) -> str:
        return self.metric or STALENESS_METRICS[self.signal]

    def metrics(self) -> tuple[str, ...]:
        return (self.metric_name,)

    def default_min_samples(self) -> int:
        return 1


Gate = Annotated[ThresholdGate | CompareGate | JudgeGate | SequentialGate | DriftGate | StalenessGate | ResourceGate
                 | ServerGate, Field(discriminator="kind")]
GATE_KINDS = ("threshold", "compare", "judge", "sequential", "drift", "staleness", "resource", "server")


def min_samples(gate: GateBase) -> int:
    return gate.min_samples if gate.min_samples is not None else gate.default_min_samples()  # type: ignore[attr-defined]


def reads_probes(gate: GateBase) -> bool:
    """The gate judges the standby's probe mirrors (requests mirrored to an idle standby, `twin.probe_percent`):
    the active slot against them (compare, `subject: active`), or a CUSUM of them against the active's past."""
    if isinstance(gate, CompareGate):
        return gate.subject == "active"
    return (isinstance(gate, SequentialGate) and gate.method == "cusum" and gate.slot == "standby"
            and gate.baseline_slot == "active")


def judges_canary(gate: GateBase) -> bool:
    """The gate judges a canary: it compares the standby with the incumbent (compare, judge, mSPRT), or watches
    the standby slot (a CUSUM, threshold or drift gate on `slot: standby`). Gates about the active slot's own
    regressions (a compare with `subject: active`, a CUSUM of the standby's probes against the active's past)
    are steady-state gates. With no canary on the Cube such a
    gate has nothing to judge, so the steady-state loop skips it and chaos pre-flight does not count it as a
    steady-state gate. The one definition: the SRE loop and chaos both ask this function."""
    if isinstance(gate, CompareGate):
        return gate.subject == "standby"
    if isinstance(gate, JudgeGate | ResourceGate):
        return True
    if isinstance(gate, SequentialGate):
        # the standby's probes against the active's past judge a flip target, not a canary
        return gate.method != "cusum" or (gate.slot == "standby" and gate.baseline_slot != "active")
    return getattr(gate, "slot", None) == "standby"
