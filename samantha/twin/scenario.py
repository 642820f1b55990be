"""Scenarios: a YAML timeline of deploys, faults and input shifts run against the twin.

The runner is self-contained by default: a fresh twin and a fresh `samantha run` daemon
(shipped playbooks, defaults) in a temporary directory, torn down at the end, so runs are
independent and repeatable. It prints one JSON object: the faults with their onset,
detection and mitigation times, the actions Samantha took, the false actions, the daemon's
footprint and a traffic summary, measured by the daemon from its own DuckDB file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
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
from samantha.cube.protocol import CubeError
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
    rollout: bool = Field(False, description="hand the bundle to Samantha's rollout controller (POST "
                          "/v1/rollout/start) instead of loading it and setting weights directly")

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


# -- running ------------------------------------------------------------------

def _ephemeral_twin(data_dir: Path, ingest_url: str | None, rps: float) -> SamanthaConfig:
    ports = {f: 0 for f in ("router_port", "control_port", "slot_a_port", "slot_b_port", "proxy_api_port",
                            "proxy_a_port", "proxy_b_port", "loadgen_port")}
    return SamanthaConfig(data_dir=str(data_dir), twin=TwinConfig(**ports, ingest_url=ingest_url, rps=rps))


@contextlib.contextmanager
def telemetry_server(data_dir: Path) -> Iterator[tuple[str, SamanthaConfig]]:
    """`samantha telemetry serve` on a fresh store; yields the ingest URL and the store's config."""
    data_dir.mkdir(parents=True, exist_ok=True)
    cfg_file = data_dir / "samantha.yaml"
    cfg_file.write_text(f"data_dir: {data_dir}\n")
    from samantha.harness.daemon_process import free_port

    port = free_port()
    log = open(data_dir / "telemetry-serve.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen([sys.executable, "-m", "samantha", "telemetry", "serve", "--port", str(port),
                             "--config", str(cfg_file)], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=os.environ.copy(), start_new_session=True)
    log.close()
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"telemetry serve did not start: {(data_dir / 'telemetry-serve.log').read_text()[-500:]}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1/ingest/requests", SamanthaConfig(data_dir=str(data_dir))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


class Runner:
    def __init__(self, scenario: Scenario, st: dict[str, Any], *, speed: float = 1.0,
                 progress: Callable[[float, str], None] | None = None, samantha_url: str | None = None,
                 samantha_headers: dict[str, str] | None = None):
        self.sc, self.st, self.speed, self.samantha_url = scenario, st, speed, samantha_url
        self.samantha_headers = samantha_headers or {}
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
            m = build_bundle(path, name="sensor-mlp", version=d.bundle, seed=d.seed, profile=d.profile, key=key)
            if d.rollout:
                if self.samantha_url is None:
                    raise RuntimeError("deploy with rollout: true needs Samantha beside the twin")
                r = self.http.post(f"{self.samantha_url}/v1/rollout/start",
                                   json={"bundle": str(path), "request_id": self._rid("rollout")},
                                   headers=self.samantha_headers)
                if r.status_code >= 400:
                    raise RuntimeError(f"rollout start refused: {r.text[:300]}")
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
            from samantha.cube.proxy_client import ProxyClient

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
            from samantha.cube.proxy_client import ProxyClient

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


def traffic_from_store(store_cfg: SamanthaConfig) -> dict[str, Any]:
    from samantha.harness.measure import traffic_by_role
    from samantha.telemetry.store import TelemetryStore

    with TelemetryStore.open(store_cfg) as store:
        return traffic_by_role(store)


def _drive(scenario: Scenario, st: dict[str, Any], speed: float, progress: Callable[[float, str], None] | None,
           samantha_url: str | None = None, samantha_headers: dict[str, str] | None = None,
           ) -> tuple[Runner, dict[str, Any], dict[str, Any], Any]:
    runner = Runner(scenario, st, speed=speed, progress=progress, samantha_url=samantha_url,
                    samantha_headers=samantha_headers)
    try:
        _wait_healthy(runner.cube)
        runner.run()
        time.sleep(0.5)  # in-flight requests finish; the router's last telemetry batch goes out
        lg = runner.http.get(f"{lifecycle.loadgen_url(st)}/stats").json()
        router = runner.http.get(f"{lifecycle.control_url(st)}/v1/twin/stats").json()
        return runner, lg, router, runner.cube.state()
    finally:
        runner.close()


def _measure(url: str, headers: dict[str, str], runner: Runner, scenario: Scenario, speed: float) -> dict[str, Any]:
    end = runner.t0_wall + scenario.duration_s / speed
    r = httpx.post(f"{url}/v1/measure", json={"faults": runner.faults, "t0": runner.t0_wall,
                                              "duration_s": scenario.duration_s, "end": end}, headers=headers, timeout=60)
    if r.status_code >= 400:
        raise RuntimeError(f"the daemon could not measure the run: {r.text[:500]}")
    return r.json()


def _with_samantha(scenario: Scenario, tmp: Path, speed: float, progress: Callable[[float, str], None] | None,
                   policy: Any = None, llm: bool = False) -> tuple[Runner, dict[str, Any], dict[str, Any], Any, dict[str, Any]]:
    """A fresh twin with a fresh `samantha run` daemon beside it (shipped playbooks, defaults).

    The daemon measures the run from its own DuckDB file (POST /v1/measure) before it is stopped;
    its footprint (RSS, USS, CPU share over the timeline) goes into the report."""
    import yaml

    from samantha.harness.daemon_process import DaemonProcess, free_port, write_config

    port = free_port()
    cfg = _ephemeral_twin(tmp / "state", f"http://127.0.0.1:{port}/v1/ingest/requests", 0)
    update: dict[str, Any] = {"api": cfg.api.model_copy(update={"port": port}),
                              "llm": cfg.llm.model_copy(update={"enabled": llm})}
    if policy is not None:
        (tmp / "rollout-policy.yaml").write_text(yaml.safe_dump(policy.model_dump(mode="json")))
        update["sre"] = cfg.sre.model_copy(update={"rollout_policy": str(tmp / "rollout-policy.yaml")})
    cfg = cfg.model_copy(update=update)
    st = lifecycle.up(cfg)  # first: the daemon finds the Cube through the twin's state file
    try:
        with DaemonProcess(cfg, write_config(cfg, tmp / "samantha.yaml"), log=tmp / "daemon.log") as daemon:
            daemon.start().wait_ready(90, verdicts=True)
            daemon.cpu_mark()
            runner, lg, router, final = _drive(scenario, st, speed, progress, samantha_url=daemon.url,
                                                     samantha_headers=daemon.client.headers())
            foot = daemon.footprint()
            measured = _measure(daemon.url, daemon.client.headers(), runner, scenario, speed)
            measured["daemon"] = {**foot, "rps": scenario.traffic.rps, "pid": daemon.pid,
                                  "exit_code": daemon.stop()}
    finally:
        lifecycle.down(cfg)
    return runner, lg, router, final, measured


def run_scenario(scenario: Scenario, *, speed: float = 1.0, attach: SamanthaConfig | None = None,
                 progress: Callable[[float, str], None] | None = None, samantha: bool = True,
                 policy: Any = None, llm: bool = False) -> dict[str, Any]:
    """`samantha=True` (default): a fresh `samantha run` daemon runs beside the fresh twin and the report
    carries detection, mitigation and actions; False: the twin alone (onsets only). `attach`: the
    running twin and daemon of that config (the daemon measures; nothing is torn down). `llm`: the fresh
    daemon triages incidents with the local LLM (off the fast path); off, the rules triage."""
    started = time.time()
    by_role = None
    measured: dict[str, Any] | None = None
    if attach is not None:
        from samantha.api.client import auth_headers, daemon_url

        st = lifecycle.read_state(attach)
        if not st or not st.get("ready"):
            raise RuntimeError("--attach: no running twin for this config (run `samantha twin up`)")
        url = daemon_url(attach)
        try:
            httpx.get(f"{url}/healthz", timeout=2).raise_for_status()
        except httpx.HTTPError as e:
            raise RuntimeError(f"--attach: no daemon answers at {url} (run `samantha run`): {e}") from None
        headers = auth_headers(attach)
        runner, lg, router, final = _drive(scenario, st, speed, progress, samantha_url=url, samantha_headers=headers)
        measured = _measure(url, headers, runner, scenario, speed)
    elif samantha:
        with tempfile.TemporaryDirectory(prefix=f"scenario-{scenario.name}-") as tmp:
            runner, lg, router, final, measured = _with_samantha(scenario, Path(tmp), speed, progress, policy,
                                                                           llm)
    else:
        with tempfile.TemporaryDirectory(prefix=f"scenario-{scenario.name}-") as tmp:
            with telemetry_server(Path(tmp) / "store") as (url, store_cfg):
                cfg = _ephemeral_twin(Path(tmp) / "twin", url, 0)
                st = lifecycle.up(cfg)
                try:
                    runner, lg, router, final = _drive(scenario, st, speed, progress)
                finally:
                    lifecycle.down(cfg)
            by_role = traffic_from_store(store_cfg)  # the server has stopped: the store is ours to read
    out: dict[str, Any] = {
        "name": scenario.name, "duration_s": scenario.duration_s, "speed": speed,
        "wall_s": round(time.time() - started, 2), "self_contained": attach is None,
        "faults": runner.faults, "actions": [], "false_actions": 0,
        "timeline": runner.log,
        "traffic": {"rps": scenario.traffic.rps, "sent": lg["sent"], "ok": lg["ok"], "failed": lg["failed"],
                    "statuses": lg["statuses"], "telemetry": router["telemetry"]},
        "final_state": {"active": final.active, "weights": final.weights.model_dump(), "shadow": final.shadow,
                        "quarantine": [q.bundle_id for q in final.quarantine]},
    }
    if measured is not None:
        by_role = measured["by_role"]
        out.update(faults=measured["faults"], actions=measured["actions"], false_actions=measured["false_actions"],
                   false_action_list=measured["false_action_list"])
        if "daemon" in measured:
            out["daemon"] = measured["daemon"]
    if by_role is not None:
        out["traffic"]["by_role"] = by_role
    return out


def _wait_healthy(cube: CubeClient, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(CubeError):
            if all(s.healthy for s in cube.state().slots):
                return
        time.sleep(0.1)
    raise RuntimeError("the twin's slots did not become healthy")
