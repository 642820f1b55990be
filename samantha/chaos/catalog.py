"""The fault catalog: every fault Samantha may inject, typed, with its blast-radius profile.

A fault kind is a pydantic model (discriminated on `kind`) whose field bounds ARE the
catalog's parameter ranges: a proposal outside them does not parse. Each kind has a
static `KindProfile` (what it touches, which targets it accepts, what it consumes, how
it is reverted) and a concrete `BlastRadius` once target and parameters are known.

Targets are roles on the Cube's dependency map, resolved to slot names only when an
experiment is built, so a flip between planning and running cannot retarget a fault:
- `active` / `standby`: the path router -> proxy -> slot of that role;
- `router`: the router's input stage (input noise);
- `host`: the machine's CPU, memory, disk;
- `cube`: the Cube as a whole (rollback drill).
Anything else (Samantha's own store and API, the control API, the router process) is
protected: pre-flight rejects it by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

Target = Literal["active", "standby", "router", "host", "cube"]
TARGETS: tuple[str, ...] = ("active", "standby", "router", "host", "cube")
# Named so a refusal can say what it protects; every other unknown target is rejected too.
PROTECTED_TARGETS: dict[str, str] = {
    "samantha-store": "Samantha's own DuckDB file",
    "samantha-api": "Samantha's local API",
    "cube-control": "the path to the Cube control API",
    "router-process": "the router process (it serves the Cube control API)",
    "proxy-process": "the fault proxy process (both data paths and every revert go through it)",
    "supervisor": "the Cube's process supervisor (it restarts crashed slots)",
}
Component = Literal["router", "proxy", "slot", "host_cpu", "host_memory", "host_disk", "cube_control"]
MAX_DURATION_S = 600.0  # catalog ceiling for any fault; the autonomous cap in config is lower


class FaultBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)

    duration_s: float = Field(30.0, gt=0, le=MAX_DURATION_S, description="how long the fault stays injected")

    def traffic_share(self) -> float:
        """Share of the target path's requests the fault touches (1.0: all of them)."""
        return 1.0

    def resources(self) -> tuple[float, float, float]:
        """(cpu cores, memory MB, disk MB) the fault itself consumes on the host."""
        return (0.0, 0.0, 0.0)


class InputNoise(FaultBase):
    """Gaussian noise on the input features of a share of requests, at the router."""

    kind: Literal["input_noise"] = "input_noise"
    fraction: float = Field(0.05, gt=0, le=0.5, description="share of requests whose inputs get noise")
    sigma: float = Field(1.0, gt=0, le=10.0, description="noise standard deviation, in feature units")

    def traffic_share(self) -> float:
        return self.fraction


class _Toxic(FaultBase):
    toxicity: float = Field(1.0, gt=0, le=1.0, description="share of connections the toxic applies to")

    def traffic_share(self) -> float:
        return self.toxicity


class Latency(_Toxic):
    """Latency plus jitter on a slot's data path (proxy `latency` toxic)."""

    kind: Literal["latency"] = "latency"
    latency_ms: int = Field(100, ge=1, le=10_000)
    jitter_ms: int = Field(0, ge=0, le=5_000)


class Timeout(_Toxic):
    """The data path stalls and closes after `timeout_ms` (proxy `timeout` toxic)."""

    kind: Literal["timeout"] = "timeout"
    timeout_ms: int = Field(1000, ge=0, le=60_000)


class ResetPeer(_Toxic):
    """Connections are reset (TCP RST) after `timeout_ms` (proxy `reset_peer` toxic)."""

    kind: Literal["reset_peer"] = "reset_peer"
    timeout_ms: int = Field(0, ge=0, le=10_000)


class Bandwidth(_Toxic):
    """The data path is throttled to `rate_kbps` (proxy `bandwidth` toxic)."""

    kind: Literal["bandwidth"] = "bandwidth"
    rate_kbps: int = Field(64, ge=1, le=1_000_000)


class HttpError(_Toxic):
    """Requests answered with an HTTP error instead of reaching the slot (proxy `http_error` toxic)."""

    kind: Literal["http_error"] = "http_error"
    status_code: int = Field(503, ge=500, le=599)


class SlotPause(FaultBase):
    """SIGSTOP the slot process, SIGCONT it after `duration_s`."""

    kind: Literal["sigstop"] = "sigstop"
    duration_s: float = Field(5.0, gt=0, le=60.0)


class SlotKill(FaultBase):
    """SIGKILL the slot process; the Cube's supervisor must restart it within `restart_timeout_s`."""

    kind: Literal["kill_slot"] = "kill_slot"
    duration_s: float = Field(20.0, gt=0, le=120.0, description="observation window for the restart")
    restart_timeout_s: float = Field(15.0, ge=1, le=60.0)


class CpuBurn(FaultBase):
    """A CPU burner process (psutil-checked) using `cores` cores."""

    kind: Literal["cpu_burn"] = "cpu_burn"
    cores: float = Field(0.5, gt=0, le=8.0)

    def resources(self) -> tuple[float, float, float]:
        return (self.cores, 0.0, 0.0)


class MemoryHog(FaultBase):
    """A process holding `mb` MB of touched memory."""

    kind: Literal["memory_hog"] = "memory_hog"
    mb: int = Field(128, ge=1, le=8192)

    def resources(self) -> tuple[float, float, float]:
        return (0.0, float(self.mb), 0.0)  # idle once its pages are touched


class RollbackDrill(FaultBase):
    """Flip to the standby, hold `hold_s`, flip back, and verify both flips from the Cube's state."""

    kind: Literal["rollback_drill"] = "rollback_drill"
    duration_s: float = Field(10.0, gt=0, le=120.0)
    hold_s: float = Field(2.0, ge=0, le=30.0)


class DiskPressure(FaultBase):
    """A ballast file of `mb` MB in Samantha's chaos directory, removed afterwards."""

    kind: Literal["disk_pressure"] = "disk_pressure"
    mb: int = Field(64, ge=1, le=65_536)

    def resources(self) -> tuple[float, float, float]:
        return (0.0, 0.0, float(self.mb))


Fault = Annotated[InputNoise | Latency | Timeout | ResetPeer | Bandwidth | HttpError | SlotPause | SlotKill
                  | CpuBurn | MemoryHog | RollbackDrill | DiskPressure, Field(discriminator="kind")]
FAULT_ADAPTER: TypeAdapter[Fault] = TypeAdapter(Fault)
FAULT_MODELS: dict[str, type[FaultBase]] = {
    m.model_fields["kind"].default: m for m in (InputNoise, Latency, Timeout, ResetPeer, Bandwidth, HttpError,
                                                 SlotPause, SlotKill, CpuBurn, MemoryHog, RollbackDrill,
                                                 DiskPressure)}
NETWORK_KINDS = ("latency", "timeout", "reset_peer", "bandwidth", "http_error")
TOXIC_TYPE = {"latency": "latency", "timeout": "timeout", "reset_peer": "reset_peer", "bandwidth": "bandwidth",
              "http_error": "http_error"}


@dataclass(frozen=True)
class KindProfile:
    kind: str
    summary: str
    touches: tuple[str, ...]
    targets: tuple[str, ...]
    reversible: bool
    revert: str
    path_down: bool  # at full strength the faulted path serves nothing

    def ranges(self) -> dict[str, dict[str, Any]]:
        """Parameter ranges, read from the model's own bounds (one source of truth)."""
        out: dict[str, dict[str, Any]] = {}
        for name, prop in FAULT_MODELS[self.kind].model_json_schema()["properties"].items():
            if name == "kind":
                continue
            out[name] = {k: prop[k] for k in ("type", "minimum", "exclusiveMinimum", "maximum", "default")
                         if k in prop}
        return out


_SLOTS = ("active", "standby")
PROFILES: dict[str, KindProfile] = {p.kind: p for p in (
    KindProfile("input_noise", InputNoise.__doc__ or "", ("router",), ("router",), True,
                "set the router's noise fraction back to 0 (control API /v1/twin/noise)", False),
    KindProfile("latency", Latency.__doc__ or "", ("proxy", "slot"), _SLOTS, True, "delete the toxic", False),
    KindProfile("timeout", Timeout.__doc__ or "", ("proxy", "slot"), _SLOTS, True, "delete the toxic", True),
    KindProfile("reset_peer", ResetPeer.__doc__ or "", ("proxy", "slot"), _SLOTS, True, "delete the toxic", True),
    KindProfile("bandwidth", Bandwidth.__doc__ or "", ("proxy", "slot"), _SLOTS, True, "delete the toxic", False),
    KindProfile("http_error", HttpError.__doc__ or "", ("proxy", "slot"), _SLOTS, True, "delete the toxic", True),
    KindProfile("sigstop", SlotPause.__doc__ or "", ("slot",), _SLOTS, True, "SIGCONT the slot process", True),
    KindProfile("kill_slot", SlotKill.__doc__ or "", ("slot",), _SLOTS, True,
                "the supervisor restarts the slot; the revert waits for it to answer healthy", True),
    KindProfile("cpu_burn", CpuBurn.__doc__ or "", ("host_cpu",), ("host",), True,
                "kill the burner process (it also exits on its own after duration_s)", False),
    KindProfile("memory_hog", MemoryHog.__doc__ or "", ("host_memory",), ("host",), True,
                "kill the hog process (it also exits on its own after duration_s)", False),
    KindProfile("rollback_drill", RollbackDrill.__doc__ or "", ("cube_control", "slot"), ("cube",), True,
                "flip back to the slot that was active before the drill", False),
    KindProfile("disk_pressure", DiskPressure.__doc__ or "", ("host_disk",), ("host",), True,
                "delete the ballast file", False),
)}
KINDS: tuple[str, ...] = tuple(PROFILES)


class FaultError(ValueError):
    """A proposal that names no catalog entry or has parameters outside its ranges. `problems`: field -> reason."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


def parse_fault(kind: Any, params: Any) -> FaultBase:
    """Validate raw (kind, params) against the catalog. Raises FaultError naming every bad field."""
    if not isinstance(kind, str) or kind not in FAULT_MODELS:
        raise FaultError({"kind": f"{kind!r} is not in the fault catalog (known: {', '.join(KINDS)})"})
    if not isinstance(params, dict):
        raise FaultError({"params": "must be a mapping of parameter -> value"})
    try:
        return FAULT_ADAPTER.validate_python({**params, "kind": kind})
    except ValidationError as e:
        probs = {}
        for err in e.errors():
            loc = [str(p) for p in err["loc"] if p != kind]
            probs["params." + ".".join(loc) if loc else "params"] = err["msg"]
        raise FaultError(probs) from None


class BlastRadius(BaseModel):
    """What a concrete fault would touch: the pre-flight reasons from this, never from prose."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    target: str
    touches: tuple[str, ...]
    role: Literal["active", "standby", "both", "none"]
    traffic_share: float = Field(description="share of the touched path's requests affected")
    live_share: float = Field(description="share of ALL live traffic affected, given the current weights")
    duration_s: float
    cpu_cores: float
    memory_mb: float
    disk_mb: float
    reversible: bool
    revert: str
    path_down: bool = Field(description="the faulted path serves nothing while the fault is in")


def blast_radius(fault: FaultBase, target: str, standby_weight_pct: float = 0.0) -> BlastRadius:
    p = PROFILES[fault.kind]  # type: ignore[attr-defined]
    role: Literal["active", "standby", "both", "none"]
    if target in ("active", "standby"):
        role = target  # type: ignore[assignment]
    elif target in ("router", "cube"):
        role = "both"
    else:
        role = "none"
    share = fault.traffic_share()
    w = min(max(standby_weight_pct, 0.0), 100.0) / 100.0
    path_share = {"active": 1.0 - w, "standby": w, "both": 1.0, "none": 0.0}[role]
    if fault.kind == "rollback_drill":
        share = 1.0  # every request is served by the standby while the drill holds
    cpu, mem, disk = fault.resources()
    path_down = p.path_down and share >= 1.0
    return BlastRadius(kind=p.kind, target=target, touches=p.touches, role=role, traffic_share=share,
                       live_share=share * path_share, duration_s=fault.duration_s, cpu_cores=cpu, memory_mb=mem,
                       disk_mb=disk, reversible=p.reversible, revert=p.revert, path_down=path_down)


def intensity_params(kind: str, intensity: str) -> dict[str, Any]:
    """Parameters for an LLM proposal's low|medium|high intensity, always inside the kind's ranges."""
    level = {"low": 0, "medium": 1, "high": 2}[intensity]
    table: dict[str, list[dict[str, Any]]] = {
        "input_noise": [{"fraction": 0.02, "sigma": 0.5}, {"fraction": 0.05, "sigma": 1.0},
                        {"fraction": 0.1, "sigma": 2.0}],
        "latency": [{"latency_ms": 50, "jitter_ms": 10}, {"latency_ms": 200, "jitter_ms": 50},
                    {"latency_ms": 1000, "jitter_ms": 200}],
        "timeout": [{"timeout_ms": 500, "toxicity": 0.05}, {"timeout_ms": 1000, "toxicity": 0.2},
                    {"timeout_ms": 2000, "toxicity": 1.0}],
        "reset_peer": [{"toxicity": 0.02}, {"toxicity": 0.1}, {"toxicity": 1.0}],
        "bandwidth": [{"rate_kbps": 1024}, {"rate_kbps": 128}, {"rate_kbps": 16}],
        "http_error": [{"toxicity": 0.02}, {"toxicity": 0.1}, {"toxicity": 1.0}],
        "sigstop": [{"duration_s": 1.0}, {"duration_s": 3.0}, {"duration_s": 10.0}],
        "kill_slot": [{}, {}, {}],
        "cpu_burn": [{"cores": 0.25}, {"cores": 0.5}, {"cores": 1.0}],
        "memory_hog": [{"mb": 32}, {"mb": 128}, {"mb": 512}],
        "rollback_drill": [{"hold_s": 1.0}, {"hold_s": 3.0}, {"hold_s": 10.0}],
        "disk_pressure": [{"mb": 16}, {"mb": 64}, {"mb": 256}],
    }
    params = {"duration_s": [10.0, 20.0, 30.0][level], **table[kind][level]}
    if kind in ("sigstop",):
        params["duration_s"] = table[kind][level]["duration_s"]
    return params


def catalog_table() -> list[dict[str, Any]]:
    """The catalog as data (CLI, API, docs)."""
    return [{"kind": p.kind, "summary": p.summary.strip(), "touches": list(p.touches), "targets": list(p.targets),
             "reversible": p.reversible, "revert": p.revert, "path_down_at_full_strength": p.path_down,
             "ranges": p.ranges()} for p in PROFILES.values()]
