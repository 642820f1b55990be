"""The fault-kind registry: every fault Samantha may inject, one declaration per kind.

A `FaultKind` declares everything about a kind in one place: its parameter model (a
pydantic model whose field bounds ARE the catalog's parameter ranges: a proposal outside
them does not parse), its blast-radius profile (what it acts on and touches, which target
roles it accepts, how it is reverted), the LLM's low|medium|high intensities, the minimal
self-test that exercises its revert, the planner's candidates and the incident causes it
rehearses, and the Chaos Toolkit provider function that injects it. Adding a kind is one
`REGISTRY.register(FaultKind(...))` below; every consumer reads the registry:

- pre-flight (`resolve`: the kind's `BlastProfile` and the fault's `FaultDemand` for the kernel),
- the planner (candidates, causes, intensities for LLM proposals),
- the providers' `inject` dispatch (`FaultKind.inject`, a function of `samantha.chaos.providers.actions`),
- experiment compilation (shadowing, extra steps, whether it holds itself),
- the revert self-test, findings, the API/CLI catalog and the LLM's enumerations.

Targets are roles on the Cube's dependency map (`samantha.kernel.preflight.TARGETS`); the
protected targets are named there too, in the kernel, which judges them.
"""

from __future__ import annotations

import contextlib
import importlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from samantha.core.domain import ProbableCause
from samantha.core.proposal import Proposal
from samantha.kernel.preflight import (
    PROTECTED_TARGETS,
    TARGETS,
    BlastProfile,
    BlastRadius,
    FaultDemand,
    Mechanism,
    PreflightInput,
    ResolvedFault,
)
from samantha.kernel.preflight import blast_radius as _kernel_blast_radius

__all__ = ["ACTIONS", "KINDS", "MAX_DURATION_S", "PROTECTED_TARGETS", "REGISTRY", "TARGETS", "Candidate", "Fault",
           "FaultBase", "FaultError", "FaultKind", "FaultRegistry", "Target", "blast_radius", "catalog_table",
           "intensity_params", "parse_fault", "preflight_input", "resolve"]

Target = Literal["active", "standby", "router", "host", "cube"]
ACTIONS = "samantha.chaos.providers.actions"  # the Chaos Toolkit provider module experiment documents name
MAX_DURATION_S = 600.0  # catalog ceiling for any fault; the autonomous cap in config is lower
Intensity = Literal["low", "medium", "high"]
INTENSITIES: tuple[Intensity, ...] = ("low", "medium", "high")


# --- parameter models ----------------------------------------------------------------------------

class FaultBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)

    duration_s: float = Field(30.0, gt=0, le=MAX_DURATION_S, description="how long the fault stays injected")

    def traffic_share(self) -> float:
        """Share of the target path's requests the fault touches (1.0: all of them)."""
        return 1.0

    def resources(self) -> tuple[float, float, float]:
        """(cpu cores, memory MB, disk MB) the fault itself consumes on the host."""
        return (0.0, 0.0, 0.0)

    def demand(self) -> FaultDemand:
        """What this fault asks of the Cube and the host: the kernel's view of the parameters."""
        cpu, mem, disk = self.resources()
        return FaultDemand(traffic_share=self.traffic_share(), duration_s=self.duration_s, cpu_cores=cpu,
                           memory_mb=mem, disk_mb=disk)

    def describe(self, target: str) -> str:
        """A short label for findings."""
        k = self.kind  # type: ignore[attr-defined]
        return f"{k.replace('_', ' ')} on the {target} path" if target in ("active", "standby") else k.replace("_", " ")


class InputNoise(FaultBase):
    """Gaussian noise on the input features of a share of requests, at the router."""

    kind: Literal["input_noise"] = "input_noise"
    fraction: float = Field(0.05, gt=0, le=0.5, description="share of requests whose inputs get noise")
    sigma: float = Field(1.0, gt=0, le=10.0, description="noise standard deviation, in feature units")

    def traffic_share(self) -> float:
        return self.fraction

    def describe(self, target: str) -> str:
        return f"input noise (sigma {self.sigma:g}) on {self.fraction:.0%} of requests"


class _Toxic(FaultBase):
    toxicity: float = Field(1.0, gt=0, le=1.0, description="share of connections the toxic applies to")

    def traffic_share(self) -> float:
        return self.toxicity

    def toxic(self) -> tuple[str, dict[str, Any]]:
        """(proxy toxic type, its attributes)."""
        raise NotImplementedError


class Latency(_Toxic):
    """Latency plus jitter on a slot's data path (proxy `latency` toxic)."""

    kind: Literal["latency"] = "latency"
    latency_ms: int = Field(100, ge=1, le=10_000)
    jitter_ms: int = Field(0, ge=0, le=5_000)

    def toxic(self) -> tuple[str, dict[str, Any]]:
        return "latency", {"latency": self.latency_ms, "jitter": self.jitter_ms}

    def describe(self, target: str) -> str:
        return f"{self.latency_ms} ms latency on the {target} path"


class Timeout(_Toxic):
    """The data path stalls and closes after `timeout_ms` (proxy `timeout` toxic)."""

    kind: Literal["timeout"] = "timeout"
    timeout_ms: int = Field(1000, ge=0, le=60_000)

    def toxic(self) -> tuple[str, dict[str, Any]]:
        return "timeout", {"timeout": self.timeout_ms}


class ResetPeer(_Toxic):
    """Connections are reset (TCP RST) after `timeout_ms` (proxy `reset_peer` toxic)."""

    kind: Literal["reset_peer"] = "reset_peer"
    timeout_ms: int = Field(0, ge=0, le=10_000)

    def toxic(self) -> tuple[str, dict[str, Any]]:
        return "reset_peer", {"timeout": self.timeout_ms}


class Bandwidth(_Toxic):
    """The data path is throttled to `rate_kbps` (proxy `bandwidth` toxic)."""

    kind: Literal["bandwidth"] = "bandwidth"
    rate_kbps: int = Field(64, ge=1, le=1_000_000)

    def toxic(self) -> tuple[str, dict[str, Any]]:
        return "bandwidth", {"rate": self.rate_kbps}


class HttpError(_Toxic):
    """Requests answered with an HTTP error instead of reaching the slot (proxy `http_error` toxic)."""

    kind: Literal["http_error"] = "http_error"
    status_code: int = Field(503, ge=500, le=599)

    def toxic(self) -> tuple[str, dict[str, Any]]:
        return "http_error", {"status_code": self.status_code}


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

    def stressor_jobs(self) -> list[tuple[str, float]]:
        """(stressor kind, amount) per process: one burner per started core."""
        n = math.ceil(self.cores)
        return [("cpu", self.cores / n)] * n


class MemoryHog(FaultBase):
    """A process holding `mb` MB of touched memory."""

    kind: Literal["memory_hog"] = "memory_hog"
    mb: int = Field(128, ge=1, le=8192)

    def resources(self) -> tuple[float, float, float]:
        return (0.0, float(self.mb), 0.0)  # idle once its pages are touched

    def stressor_jobs(self) -> list[tuple[str, float]]:
        return [("memory", float(self.mb))]


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


# --- the declaration -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    """One experiment the planner proposes for a kind."""

    target: str
    params: dict[str, Any]
    why: str


def _no_candidates(upstream_timeout_s: float) -> Sequence[Candidate]:
    return ()


def _no_steps(fault: FaultBase, slot: str | None) -> list[dict[str, Any]]:
    return []


@dataclass(frozen=True)
class FaultKind:
    """Everything about one fault kind. `REGISTRY.register` checks the declaration is self-consistent."""

    name: str
    model: type[FaultBase]
    mechanism: Mechanism
    touches: tuple[str, ...]
    targets: tuple[str, ...]
    revert: str  # how it is reverted, in words (approval context, catalog)
    revert_op: str  # the ledger revert op its injector writes (samantha.chaos.providers.revert)
    inject: str  # the injector: a function of samantha.chaos.providers.actions, or "module:function"
    intensities: tuple[dict[str, Any], dict[str, Any], dict[str, Any]]  # low, medium, high parameters
    selftest: dict[str, Any] | None = None  # minimal parameters that exercise the revert; None: cannot self-test
    plan: Callable[[float], Sequence[Candidate]] = _no_candidates  # planner candidates, given the upstream timeout
    rehearses: tuple[str, ...] = ()  # incident probable causes (ProbableCause) this kind rehearses
    reversible: bool = True
    path_down: bool = False  # at full strength the faulted path serves nothing
    shadow_on_standby: bool = False  # on the standby path, mirror live traffic to it (observed, users untouched)
    holds_itself: bool = False  # the injector holds and reverts inside its own action: no `hold` step
    after_inject: Callable[[FaultBase, str | None], list[dict[str, Any]]] = _no_steps  # extra method steps (slot)
    learns_latency: bool = False  # a run measures the path's p99 (findings -> learned latency gates)
    selftest_duration_s: float = 2.0  # the self-test's duration_s (it overrides the self-test parameters')

    @property
    def summary(self) -> str:
        return " ".join((self.model.__doc__ or "").split())

    @property
    def profile(self) -> BlastProfile:
        return BlastProfile(kind=self.name, summary=self.summary, mechanism=self.mechanism, touches=self.touches,
                            targets=self.targets, reversible=self.reversible, revert=self.revert,
                            path_down=self.path_down)

    @property
    def selftest_target(self) -> str:
        return "standby" if "standby" in self.targets else self.targets[0]

    def ranges(self) -> dict[str, dict[str, Any]]:
        """Parameter ranges, read from the model's own bounds (one source of truth)."""
        out: dict[str, dict[str, Any]] = {}
        for name, prop in self.model.model_json_schema()["properties"].items():
            if name == "kind":
                continue
            out[name] = {k: prop[k] for k in ("type", "minimum", "exclusiveMinimum", "maximum", "default")
                         if k in prop}
        return out

    def intensity(self, level: Intensity) -> dict[str, Any]:
        return dict(self.intensities[INTENSITIES.index(level)])

    def injector(self) -> Callable[..., dict[str, Any]]:
        """The provider function that injects this kind: (fault, target, configuration, ledger) -> output."""
        module, _, name = self.inject.rpartition(":")
        fn = getattr(importlib.import_module(module or ACTIONS), name, None)
        if not callable(fn):
            raise LookupError(f"{self.name}: {module or ACTIONS}.{name} is not a provider function")
        return fn

    def parse(self, params: dict[str, Any]) -> FaultBase:
        return self.model.model_validate({**params, "kind": self.name})

    def row(self) -> dict[str, Any]:
        """The kind as data (CLI, API, docs)."""
        return {"kind": self.name, "summary": self.summary, "mechanism": self.mechanism, "touches": list(self.touches),
                "targets": list(self.targets), "reversible": self.reversible, "revert": self.revert,
                "path_down_at_full_strength": self.path_down, "self_test": self.selftest is not None,
                "ranges": self.ranges()}


class FaultError(ValueError):
    """A proposal that names no catalog entry or has parameters outside its ranges. `problems`: field -> reason."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


class FaultRegistry:
    """Fault kinds by name, in declaration order."""

    def __init__(self, kinds: Sequence[FaultKind] = ()) -> None:
        self._kinds: dict[str, FaultKind] = {}
        for k in kinds:
            self.register(k)

    def register(self, k: FaultKind) -> FaultKind:
        """Add a kind after checking its declaration: the model's `kind` literal is its name, targets are map
        roles, and every intensity, self-test and planner candidate parses inside the kind's own ranges."""
        if k.name in self._kinds:
            raise ValueError(f"fault kind {k.name!r} is declared twice")
        if k.model.model_fields["kind"].default != k.name:
            raise ValueError(f"{k.name}: the params model's kind is {k.model.model_fields['kind'].default!r}")
        if not k.targets or set(k.targets) - set(TARGETS):
            raise ValueError(f"{k.name}: targets {k.targets} must be roles among {TARGETS}")
        if set(k.rehearses) - {c.value for c in ProbableCause}:
            raise ValueError(f"{k.name}: rehearses {k.rehearses}: not probable causes")
        examples = [*k.intensities, *([{**k.selftest, "duration_s": k.selftest_duration_s}] if k.selftest is not None
                                      else []), *(c.params for c in k.plan(5.0))]
        for params in examples:
            k.parse(params)  # raises ValidationError on a bad declaration
        for c in k.plan(5.0):
            if c.target not in k.targets:
                raise ValueError(f"{k.name}: planner candidate on {c.target}, not one of {k.targets}")
        self._kinds[k.name] = k
        return k

    @contextlib.contextmanager
    def registered(self, k: FaultKind) -> Iterator[FaultKind]:
        """Register `k` for the duration of a with-block (tests; a kind under development)."""
        self.register(k)
        try:
            yield k
        finally:
            del self._kinds[k.name]

    def __getitem__(self, name: str) -> FaultKind:
        return self._kinds[name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._kinds

    def __iter__(self) -> Iterator[FaultKind]:
        return iter(list(self._kinds.values()))

    def __len__(self) -> int:
        return len(self._kinds)

    def names(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    def targets(self) -> tuple[str, ...]:
        """Target roles some kind accepts, in map order."""
        used = {t for k in self for t in k.targets}
        return tuple(t for t in TARGETS if t in used)

    def selftestable(self) -> tuple[str, ...]:
        return tuple(k.name for k in self if k.selftest is not None)

    def fault_union(self) -> Any:
        """The discriminated union of every kind's params model (experiment templates)."""
        return Annotated[Union[tuple(k.model for k in self)], Field(discriminator="kind")]  # noqa: UP007

    def parse(self, kind: Any, params: Any) -> FaultBase:
        """Validate raw (kind, params) against the catalog. Raises FaultError naming every bad field."""
        if kind not in self:
            raise FaultError({"kind": f"{kind!r} is not in the fault catalog (known: {', '.join(self.names())})"})
        if not isinstance(params, dict):
            raise FaultError({"params": "must be a mapping of parameter -> value"})
        try:
            return self[kind].parse(params)
        except ValidationError as e:
            probs = {}
            for err in e.errors():
                loc = [str(p) for p in err["loc"]]
                probs["params." + ".".join(loc) if loc else "params"] = err["msg"]
            raise FaultError(probs) from None

    def resolve(self, proposal: Proposal) -> ResolvedFault:
        """The proposal's fault for pre-flight: the kind's profile and the fault's demand, or its problems."""
        try:
            f = self.parse(proposal.kind, proposal.params)
        except FaultError as e:
            return ResolvedFault(kind=proposal.kind if proposal.kind in self else None, problems=e.problems)
        k = self[f.kind]  # type: ignore[attr-defined]
        return ResolvedFault(kind=k.name, profile=k.profile, demand=f.demand(), fault=f.model_dump(mode="json"))

    def catalog_table(self) -> list[dict[str, Any]]:
        return [k.row() for k in self]


# --- experiment-step and planner helpers used by the declarations ------------------------------

def _await_restart(fault: FaultBase, slot: str | None) -> list[dict[str, Any]]:
    """After a kill: a probe that waits for the slot to answer healthy again (the finding's restart time)."""
    if slot is None:
        return []
    return [{"type": "probe", "name": "slot-restarts",
             "provider": {"type": "python", "module": ACTIONS, "func": "await_restart",
                          "arguments": {"role_slot": slot, "timeout_s": fault.restart_timeout_s}}}]  # type: ignore[attr-defined]


def _small(role: str) -> float:
    """The share of a slot path a planned fault touches: all of the standby's, a sliver of the active's."""
    return 1.0 if role == "standby" else 0.05


_SLOTS = ("active", "standby")


def _on_slots(params: Callable[[str], dict[str, Any]], why: str) -> Callable[[float], Sequence[Candidate]]:
    return lambda _t: [Candidate(r, params(r), why.format(role=r)) for r in _SLOTS]


def _latency_candidates(upstream_timeout_s: float) -> Sequence[Candidate]:
    under_ms = int(min(10_000, max(1, upstream_timeout_s * 1000 * 0.9)))  # just under the router's timeout
    out = []
    for r in _SLOTS:
        out.append(Candidate(r, {"latency_ms": under_ms, "jitter_ms": 0, "toxicity": _small(r), "duration_s": 20.0},
                             f"latency just under the {upstream_timeout_s:g} s timeout on the {r} path"))
        out.append(Candidate(r, {"latency_ms": 200, "jitter_ms": 20, "toxicity": _small(r), "duration_s": 20.0},
                             f"moderate latency on the {r} path: which gate sees it, how fast"))
    return out


def _fixed(*cands: Candidate) -> Callable[[float], Sequence[Candidate]]:
    return lambda _t: cands


_NET = ("proxy", "slot")
_TOXIC_REVERT = "delete the toxic"
_NETWORK = (ProbableCause.network_fault.value,)
_SLOT_DOWN = (ProbableCause.slot_down.value,)
_RESOURCES = (ProbableCause.resource_exhaustion.value,)


def _d(level: int, **params: Any) -> dict[str, Any]:
    """Intensity parameters with the usual 10/20/30 s duration."""
    return {"duration_s": (10.0, 20.0, 30.0)[level], **params}


REGISTRY = FaultRegistry()

REGISTRY.register(FaultKind(
    "input_noise", InputNoise, "input", ("router",), ("router",),
    "set the router's noise fraction back to 0 (control API /v1/twin/noise)", "noise_off", "inject_noise",
    (_d(0, fraction=0.02, sigma=0.5), _d(1, fraction=0.05, sigma=1.0), _d(2, fraction=0.1, sigma=2.0)),
    selftest={"fraction": 0.001, "sigma": 0.01},
    plan=_fixed(Candidate("router", {"fraction": 0.02, "sigma": 1.0, "duration_s": 20.0},
                          "input robustness: mild sensor noise"),
                Candidate("router", {"fraction": 0.05, "sigma": 3.0, "duration_s": 20.0},
                          "input robustness: strong noise on a small share")),
    rehearses=(ProbableCause.input_drift.value,)))
REGISTRY.register(FaultKind(
    "latency", Latency, "path", _NET, _SLOTS, _TOXIC_REVERT, "remove_toxic", "inject_toxic",
    (_d(0, latency_ms=50, jitter_ms=10), _d(1, latency_ms=200, jitter_ms=50), _d(2, latency_ms=1000, jitter_ms=200)),
    selftest={"latency_ms": 1}, plan=_latency_candidates, rehearses=_NETWORK, shadow_on_standby=True,
    learns_latency=True))
REGISTRY.register(FaultKind(
    "timeout", Timeout, "path", _NET, _SLOTS, _TOXIC_REVERT, "remove_toxic", "inject_toxic",
    (_d(0, timeout_ms=500, toxicity=0.05), _d(1, timeout_ms=1000, toxicity=0.2), _d(2, timeout_ms=2000, toxicity=1.0)),
    selftest={"timeout_ms": 1, "toxicity": 0.001}, rehearses=_NETWORK, path_down=True, shadow_on_standby=True,
    learns_latency=True))
REGISTRY.register(FaultKind(
    "reset_peer", ResetPeer, "path", _NET, _SLOTS, _TOXIC_REVERT, "remove_toxic", "inject_toxic",
    (_d(0, toxicity=0.02), _d(1, toxicity=0.1), _d(2, toxicity=1.0)),
    selftest={"toxicity": 0.001},
    plan=_on_slots(lambda r: {"toxicity": _small(r), "duration_s": 20.0}, "connection resets on the {role} path"),
    rehearses=_NETWORK, path_down=True, shadow_on_standby=True))
REGISTRY.register(FaultKind(
    "bandwidth", Bandwidth, "path", _NET, _SLOTS, _TOXIC_REVERT, "remove_toxic", "inject_toxic",
    (_d(0, rate_kbps=1024), _d(1, rate_kbps=128), _d(2, rate_kbps=16)),
    selftest={"rate_kbps": 1_000_000, "toxicity": 0.001}, rehearses=_NETWORK, shadow_on_standby=True,
    learns_latency=True))
REGISTRY.register(FaultKind(
    "http_error", HttpError, "path", _NET, _SLOTS, _TOXIC_REVERT, "remove_toxic", "inject_toxic",
    (_d(0, toxicity=0.02), _d(1, toxicity=0.1), _d(2, toxicity=1.0)),
    selftest={"toxicity": 0.001},
    plan=_on_slots(lambda r: {"toxicity": _small(r), "duration_s": 20.0},
                   "failure of the {role} path: does the fallback engage, do the gates see it?"),
    rehearses=_NETWORK, path_down=True, shadow_on_standby=True))
REGISTRY.register(FaultKind(
    "sigstop", SlotPause, "process", ("slot",), _SLOTS, "SIGCONT the slot process", "sigcont", "inject_sigstop",
    ({"duration_s": 1.0}, {"duration_s": 3.0}, {"duration_s": 10.0}),
    selftest={},
    plan=_on_slots(lambda r: {"duration_s": 3.0}, "the {role} slot hangs"),
    rehearses=_SLOT_DOWN, path_down=True, shadow_on_standby=True, learns_latency=True))
REGISTRY.register(FaultKind(
    "kill_slot", SlotKill, "process", ("slot",), _SLOTS,
    "the supervisor restarts the slot; the revert waits for it to answer healthy", "await_slot", "inject_kill",
    (_d(0), _d(1), _d(2)),
    plan=_on_slots(lambda r: {"duration_s": 20.0, "restart_timeout_s": 15.0}, "the {role} slot crashes: is it restarted?"),
    rehearses=_SLOT_DOWN, path_down=True, after_inject=_await_restart))
REGISTRY.register(FaultKind(
    "cpu_burn", CpuBurn, "host", ("host_cpu",), ("host",),
    "kill the burner process (it also exits on its own after duration_s)", "kill_stressor", "inject_stressor",
    (_d(0, cores=0.25), _d(1, cores=0.5), _d(2, cores=1.0)),
    selftest={"cores": 0.05},
    plan=_fixed(Candidate("host", {"cores": 0.5, "duration_s": 20.0}, "CPU contention")),
    rehearses=_RESOURCES))
REGISTRY.register(FaultKind(
    "memory_hog", MemoryHog, "host", ("host_memory",), ("host",),
    "kill the hog process (it also exits on its own after duration_s)", "kill_stressor", "inject_stressor",
    (_d(0, mb=32), _d(1, mb=128), _d(2, mb=512)),
    selftest={"mb": 4},
    plan=_fixed(Candidate("host", {"mb": 128, "duration_s": 20.0}, "memory pressure")),
    rehearses=_RESOURCES))
REGISTRY.register(FaultKind(
    "rollback_drill", RollbackDrill, "flip", ("cube_control", "slot"), ("cube",),
    "flip back to the slot that was active before the drill", "restore_active", "inject_drill",
    (_d(0, hold_s=1.0), _d(1, hold_s=3.0), _d(2, hold_s=10.0)),
    plan=_fixed(Candidate("cube", {"hold_s": 2.0, "duration_s": 10.0},
                          "rollback readiness: flip to the standby and back")),
    rehearses=(ProbableCause.slot_down.value, ProbableCause.bad_bundle.value), holds_itself=True))
REGISTRY.register(FaultKind(
    "disk_pressure", DiskPressure, "host", ("host_disk",), ("host",), "delete the ballast file", "remove_file",
    "inject_disk", (_d(0, mb=16), _d(1, mb=64), _d(2, mb=256)),
    selftest={"mb": 1},
    plan=_fixed(Candidate("host", {"mb": 64, "duration_s": 20.0}, "disk pressure near the store")),
    rehearses=_RESOURCES))

KINDS: tuple[str, ...] = REGISTRY.names()
Fault = REGISTRY.fault_union()


# --- the registry's functions, on the shipped registry ----------------------------------------------

def parse_fault(kind: Any, params: Any) -> FaultBase:
    """Validate raw (kind, params) against the catalog. Raises FaultError naming every bad field."""
    return REGISTRY.parse(kind, params)


def resolve(proposal: Proposal) -> ResolvedFault:
    return REGISTRY.resolve(proposal)


def preflight_input(*, proposal: Proposal, registry: FaultRegistry = REGISTRY, **fields: Any) -> PreflightInput:
    """The kernel's pre-flight input for a proposal, its fault resolved through the registry."""
    return PreflightInput(proposal=proposal, fault=registry.resolve(proposal), **fields)


def blast_radius(fault: FaultBase, target: str, standby_weight_pct: float = 0.0) -> BlastRadius:
    """What a concrete fault would touch on a target role (the kernel's computation on the kind's profile)."""
    return _kernel_blast_radius(REGISTRY[fault.kind].profile, fault.demand(), target,  # type: ignore[attr-defined]
                                standby_weight_pct)


def intensity_params(kind: str, intensity: Intensity) -> dict[str, Any]:
    """Parameters for an LLM proposal's low|medium|high intensity, always inside the kind's ranges."""
    return REGISTRY[kind].intensity(intensity)


def catalog_table() -> list[dict[str, Any]]:
    """The catalog as data (CLI, API, docs)."""
    return REGISTRY.catalog_table()
