"""Scenarios: a YAML timeline of deploys, faults and input shifts, and its application to a twin.

This module is the twin's half: the scenario document (pydantic models, `load_scenario` with
errors that name file:line:col and field) and `drive()`, which applies a timeline to a running
twin: deploys through the Cube client, faults through the fault proxy's client
(`samantha.cube.proxy_client`), slot degradations and input shifts through the twin's own
endpoints. It records each fault's onset (the faults list) and knows nothing of Samantha: a
deploy with `rollout: true` goes through the `start_rollout` callable its caller hands in.

Starting a fresh daemon beside the twin, and measuring detection, mitigation and actions from
the daemon's records, is the harness's half: `samantha.harness.scenario_run`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from samantha.core.config import SamanthaConfig, TwinConfig
from samantha.core.validated_yaml import (
    DocumentError,
    Problem,
    field_path,
    load_model_file,
    locate,
    parse_yaml,
)
from samantha.cube.bundle import SigningKey
from samantha.cube.client import CubeClient
from samantha.cube.fault_profile import FaultProfile
from samantha.cube.protocol import CubeError, CubeState
from samantha.cube.proxy_client import ProxyClient
from samantha.cube.triton_bundle import build_triton_bundle
from samantha.twin import lifecycle
from samantha.twin.toy_bundle import build_bundle

SlotRef = Literal["active", "standby", "A", "B"]


class M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Drift(M):
    at: float = Field(ge=0)
    shift: float = Field(ge=-50, le=50)


class Traffic(M):
    rps: float = Field(100, gt=0, le=5000)
    drift: Drift | None = None


class Deploy(M):
    bundle: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$", description="the version label of the new bundle")
    profile: FaultProfile = FaultProfile()
    seed: int = Field(1, description="training seed; 0 is the incumbent's, others are retrained models")
    weight: float = Field(0, ge=0, le=100, description="canary weight to the standby after the load")
    shadow: bool = False
    rollout: bool = Field(False, description="hand the bundle to Samantha's rollout controller (the runner's "
                          "`start_rollout`, POST /v1/rollout/start) instead of loading it and setting weights directly")

    @model_validator(mode="after")
    def _rollout_alone(self) -> Deploy:
        if self.rollout and (self.weight or self.shadow):
            raise ValueError("a deploy with rollout: true leaves weight and shadow to the rollout controller")
        return self


class Toxic(M):
    type: Literal["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data", "http_error"]
    attributes: dict[str, Any] = Field(default_factory=dict)
    stream: Literal["upstream", "downstream"] | None = None
    toxicity: float = Field(1.0, ge=0, le=1)


class Fault(M):
    slot: SlotRef
    toxic: Toxic
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]+$")


class RemoveFault(M):
    slot: SlotRef
    name: str | None = Field(None, description="omit to remove every toxic on the slot")


class Degrade(M):
    slot: SlotRef
    profile: FaultProfile


class Shift(M):
    shift: float = Field(ge=-50, le=50)


ACTIONS = ("deploy", "fault", "remove_fault", "degrade", "drift", "weights", "flip", "shadow")


class TimelineEvent(M):
    at: float = Field(ge=0)
    deploy: Deploy | None = None
    fault: Fault | None = None
    remove_fault: RemoveFault | None = None
    degrade: Degrade | None = None
    drift: Shift | None = None
    weights: float | None = Field(None, ge=0, le=100, description="standby weight, percent")
    flip: bool | None = None
    shadow: bool | None = None

    @model_validator(mode="after")
    def _one(self) -> TimelineEvent:
        given = [a for a in ACTIONS if getattr(self, a) is not None]
        if len(given) != 1:
            raise ValueError(f"an event has exactly one of {', '.join(ACTIONS)}; got {given or 'none'}")
        return self

    @property
    def action(self) -> str:
        return next(a for a in ACTIONS if getattr(self, a) is not None)


class Scenario(M):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    duration_s: float = Field(gt=0, le=3600)
    traffic: Traffic = Traffic()
    events: list[TimelineEvent] = Field(default_factory=list)

    def late(self) -> list[tuple[tuple[str | int, ...], str]]:
        """(location, reason) of every time past the end of the scenario."""
        out: list[tuple[tuple[str | int, ...], str]] = [
            (("events", i, "at"), f"{e.at} s is after the end of the scenario ({self.duration_s} s)")
            for i, e in enumerate(self.events) if e.at > self.duration_s]
        if self.traffic.drift and self.traffic.drift.at > self.duration_s:
            out.append((("traffic", "drift", "at"), f"{self.traffic.drift.at} s is after the end of the scenario"))
        return out


def load_scenario(path: str | Path) -> Scenario:
    """Raises DocumentError with file:line:col, field and reason."""
    sc = load_model_file(Scenario, path)
    late = sc.late()
    if late:
        _, marks = parse_yaml(Path(path).read_text(encoding="utf-8"), str(path))
        raise DocumentError([Problem(str(path), *locate(marks, loc), field_path(loc), reason) for loc, reason in late])
    return sc


CUBES = ("twin", "triton")
# what a real Triton Cube (samantha/harness/triton_cube.py) cannot apply, and why
_NO_PROXY = "no fault proxy stands in front of the Triton slots in this harness (toxics need one)"
TRITON_BLOCKED = {
    "fault": _NO_PROXY,
    "remove_fault": _NO_PROXY,
    "degrade": "a Triton model's knobs are fixed by its bundle (faults.json at load); a running slot cannot be degraded",
}


def cube_blockers(sc: Scenario, cube: str) -> list[tuple[str, str]]:
    """(field, reason) of every event `cube` cannot apply; empty when the scenario runs there as on the twin."""
    if cube == "twin":
        return []
    return [(f"events[{i}].{e.action}", TRITON_BLOCKED[e.action]) for i, e in enumerate(sc.events)
            if e.action in TRITON_BLOCKED]


# -- applying a timeline to a twin -------------------------------------------

StartRollout = Callable[[str, str], None]
"""(bundle directory, request id) -> None: hands a bundle to Samantha's rollout controller; raises RuntimeError
when it is refused. The harness supplies it (the twin does not talk to Samantha)."""


def ephemeral_config(data_dir: Path, ingest_url: str | None, rps: float) -> SamanthaConfig:
    """A twin on free ports under `data_dir`, pushing its request telemetry to `ingest_url`."""
    ports = {f: 0 for f in ("router_port", "control_port", "slot_a_port", "slot_b_port", "proxy_api_port",
                            "proxy_a_port", "proxy_b_port", "loadgen_port")}
    return SamanthaConfig(data_dir=str(data_dir), twin=TwinConfig(**ports, ingest_url=ingest_url, rps=rps))


class Runner:
    """Applies a scenario's timeline to the running twin described by `st` (its state file), in real time
    divided by `speed`; `faults` collects each fault's onset (seconds from the start) and `log` each event."""

    def __init__(self, scenario: Scenario, st: dict[str, Any], *, speed: float = 1.0,
                 progress: Callable[[float, str], None] | None = None, start_rollout: StartRollout | None = None):
        self.sc, self.st, self.speed, self.start_rollout = scenario, st, speed, start_rollout
        self.t0_wall = time.time()
        self.cube = CubeClient(lifecycle.control_url(st))
        self.http = httpx.Client(timeout=10)
        self.progress = progress or (lambda t, msg: None)
        self.faults: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []
        self.n = 0

    def _slot(self, ref: str) -> str:
        return self.cube.state().active if ref == "active" else (
            "B" if self.cube.state().active == "A" else "A") if ref == "standby" else ref

    def _bundle_on(self, slot: str) -> str | None:
        return next((s.bundle_id for s in self.cube.state().slots if s.name == slot), None)

    def _rid(self, what: str) -> str:
        self.n += 1
        return f"scenario-{self.sc.name}-{self.n}-{what}"

    def _fault(self, kind: str, at: float, target: str, **detail: Any) -> None:
        self.faults.append({"kind": kind, "target": target, "onset_s": at, "detected_s": None,
                            "mitigated_s": None, "cleared_s": None, **detail})

    def apply(self, ev: TimelineEvent) -> None:
        at, action = ev.at, ev.action
        if ev.deploy is not None:
            d = ev.deploy
            key = SigningKey.load(self.st["signing_key"])
            path = Path(self.st["bundles_dir"]) / f"{self.sc.name}-{d.bundle}-{self.n}"
            if self.st.get("bundle_format") == "triton":  # a real Triton Cube: a repository entry, same knobs
                m = build_triton_bundle(path, name="sensor", version=d.bundle, seed=d.seed, profile=d.profile, key=key)
            else:
                m = build_bundle(path, name="sensor-mlp", version=d.bundle, seed=d.seed, profile=d.profile, key=key)
            if d.rollout:
                if self.start_rollout is None:
                    raise RuntimeError("deploy with rollout: true needs Samantha beside the twin")
                self.start_rollout(str(path), self._rid("rollout"))
            else:
                self.cube.load(str(path), request_id=self._rid("load"))
            if d.weight:
                self.cube.set_weights(d.weight, request_id=self._rid("weights"))
            if d.shadow:
                self.cube.set_shadow(True, request_id=self._rid("shadow"))
            if not d.profile.is_clean():
                delay = (d.profile.crash_after_s or 0) * self.speed  # the crash, not the load
                self._fault("bad_bundle", at + delay, "standby", bundle_id=m.bundle_id, knobs=d.profile.active_knobs(),
                            delay_s=delay)
            detail = f"{m.label} {m.bundle_id[:12]} weight={d.weight} shadow={d.shadow} rollout={d.rollout}"
        elif ev.fault is not None:
            f, slot = ev.fault, self._slot(ev.fault.slot)
            name = f.name or f"{f.toxic.type}_{self.n}"
            self.n += 1
            ttl = (self.sc.duration_s - at) / self.speed + 30  # a forgotten toxic cannot outlive the run
            with ProxyClient(f"http://{self.st['host']}:{self.st['ports']['proxy_api_port']}") as pc:
                pc.add_toxic(f"slot-{slot.lower()}", f.toxic.type, f.toxic.attributes, stream=f.toxic.stream,
                             toxicity=f.toxic.toxicity, name=name, ttl_s=ttl)
            self._fault(f"toxic_{f.toxic.type}", at, f.slot, slot=slot, toxic=name, bundle_id=self._bundle_on(slot))
            detail = f"{f.toxic.type} on slot {slot} ({f.slot}) {f.toxic.attributes}"
        elif ev.remove_fault is not None:
            slot = self._slot(ev.remove_fault.slot)
            with ProxyClient(f"http://{self.st['host']}:{self.st['ports']['proxy_api_port']}") as pc:
                names = [ev.remove_fault.name] if ev.remove_fault.name else [t.name for t in pc.toxics(f"slot-{slot.lower()}")]
                for n in names:
                    pc.remove_toxic(f"slot-{slot.lower()}", n)
            for f in self.faults:
                if f.get("slot") == slot and f.get("toxic") in names and f["cleared_s"] is None:
                    f["cleared_s"] = at
            detail = f"removed {names} from slot {slot}"
        elif ev.degrade is not None:
            slot = self._slot(ev.degrade.slot)
            r = self.http.post(f"{lifecycle.slot_url(self.st, slot)}/degrade", content=ev.degrade.profile.model_dump_json())
            r.raise_for_status()
            for f in self.faults:
                if f["kind"] == "degradation" and f.get("slot") == slot and f["cleared_s"] is None:
                    f["cleared_s"] = at
            if not ev.degrade.profile.is_clean():
                self._fault("degradation", at, ev.degrade.slot, slot=slot, knobs=ev.degrade.profile.active_knobs(),
                            bundle_id=self._bundle_on(slot))
            detail = f"slot {slot}: {ev.degrade.profile.active_knobs() or 'cleared'}"
        elif ev.drift is not None:
            self._shift(at, ev.drift.shift)
            detail = f"shift {ev.drift.shift}"
        elif ev.weights is not None:
            self.cube.set_weights(ev.weights, request_id=self._rid("weights"))
            detail = f"standby {ev.weights}%"
        elif ev.flip is not None:
            self.cube.flip(request_id=self._rid("flip"))
            detail = f"active is now {self.cube.state().active}"
        else:
            self.cube.set_shadow(bool(ev.shadow), request_id=self._rid("shadow"))
            detail = f"shadow {ev.shadow}"
        self.log.append({"at": at, "kind": action, "ok": True, "detail": detail})

    def _shift(self, at: float, shift: float) -> None:
        self.http.post(f"{lifecycle.loadgen_url(self.st)}/config", json={"shift": shift}).raise_for_status()
        for f in self.faults:
            if f["kind"] == "input_drift" and f["cleared_s"] is None:
                f["cleared_s"] = at
        if shift:
            self._fault("input_drift", at, "inputs", shift=shift)

    def run(self) -> None:
        timeline = sorted(self.sc.events, key=lambda e: e.at)
        if self.sc.traffic.drift:
            timeline = sorted([*timeline, TimelineEvent(at=self.sc.traffic.drift.at,
                                                        drift=Shift(shift=self.sc.traffic.drift.shift))],
                              key=lambda e: e.at)
        lg = lifecycle.loadgen_url(self.st)
        self.http.post(f"{lg}/config", json={"rps": self.sc.traffic.rps, "shift": 0}).raise_for_status()
        t0, self.t0_wall = time.monotonic(), time.time()
        for ev in timeline:
            wait = t0 + ev.at / self.speed - time.monotonic()
            self._tick(t0, wait)
            try:
                self.apply(ev)
            except (CubeError, httpx.HTTPError, RuntimeError, ValueError, OSError) as e:
                self.log.append({"at": ev.at, "kind": ev.action, "ok": False, "detail": f"{type(e).__name__}: {e}"})
        self._tick(t0, t0 + self.sc.duration_s / self.speed - time.monotonic())
        self.http.post(f"{lg}/config", json={"rps": 0}).raise_for_status()

    def _tick(self, t0: float, wait: float) -> None:
        end = time.monotonic() + max(0.0, wait)
        while (left := end - time.monotonic()) > 0:
            self.progress((time.monotonic() - t0) * self.speed, "")
            time.sleep(min(0.25, left))
        self.progress((time.monotonic() - t0) * self.speed, "")

    def close(self) -> None:
        self.cube.close()
        self.http.close()


@dataclass
class Driven:
    """What a drive leaves: the runner (t0, faults with onsets, event log) and the twin's own counts."""

    runner: Runner
    loadgen: dict[str, Any]  # the load generator's /stats: sent, ok, failed, statuses
    router: dict[str, Any]  # the router's /v1/twin/stats: telemetry pushed
    final: CubeState

    @property
    def end_wall(self) -> float:
        """The scenario's end, wall epoch seconds."""
        return self.runner.t0_wall + self.runner.sc.duration_s / self.runner.speed


def drive(scenario: Scenario, st: dict[str, Any], *, speed: float = 1.0,
          progress: Callable[[float, str], None] | None = None, start_rollout: StartRollout | None = None) -> Driven:
    """Wait for healthy slots, run the timeline, stop the load; the twin's counts and final state."""
    runner = Runner(scenario, st, speed=speed, progress=progress, start_rollout=start_rollout)
    try:
        _wait_healthy(runner.cube)
        runner.run()
        time.sleep(0.5)  # in-flight requests finish; the router's last telemetry batch goes out
        lg = runner.http.get(f"{lifecycle.loadgen_url(st)}/stats").json()
        router = runner.http.get(f"{lifecycle.control_url(st)}/v1/twin/stats").json()
        return Driven(runner, lg, router, runner.cube.state())
    finally:
        runner.close()


def twin_report(scenario: Scenario, d: Driven) -> dict[str, Any]:
    """The twin's side of the scenario report: onsets, timeline, traffic counts, final state (no detection:
    `faults` carry onsets only and `actions` is empty until someone measures Samantha)."""
    lg, final = d.loadgen, d.final
    return {
        "faults": d.runner.faults, "actions": [], "false_actions": 0, "timeline": d.runner.log,
        "traffic": {"rps": scenario.traffic.rps, "sent": lg["sent"], "ok": lg["ok"], "failed": lg["failed"],
                    "statuses": lg["statuses"], "telemetry": d.router["telemetry"]},
        "final_state": {"active": final.active, "weights": final.weights.model_dump(), "shadow": final.shadow,
                        "quarantine": [q.bundle_id for q in final.quarantine]},
    }


def _wait_healthy(cube: CubeClient, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(CubeError):
            if all(s.healthy for s in cube.state().slots):
                return
        time.sleep(0.1)
    raise RuntimeError("the twin's slots did not become healthy")
