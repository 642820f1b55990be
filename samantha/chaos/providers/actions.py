"""Chaos Toolkit actions. Each one records its ledger entry (revert + TTL) before it injects.

`inject` dispatches on the kind: the fault-kind registry (samantha/chaos/fault_kinds.py) names
each kind's injector, one of the `inject_*` functions below, (fault, target, configuration,
ledger) -> output.

`configuration` (set by samantha/chaos/experiment.py) names the ledger, the experiment,
the Cube's control and proxy APIs, the twin state file and the ballast directory.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from samantha.chaos.fault_kinds import REGISTRY, FaultBase
from samantha.chaos.ledger import Ledger
from samantha.chaos.providers import cube
from samantha.chaos.providers.revert import revert
from samantha.cube.proxy_client import ProxyClient

_ABORT = threading.Event()  # set by the runner when the continuous hypothesis deviates


def abort() -> None:
    _ABORT.set()


def _ledger(c: dict[str, Any]) -> Ledger:
    return Ledger(c["samantha_ledger"])


def _ttl(c: dict[str, Any], fault: FaultBase) -> float:
    return fault.duration_s + float(c.get("ttl_grace_s", 30.0))


def inject(kind: str, target: str, params: dict[str, Any], configuration: dict[str, Any] | None = None) -> dict:
    """Inject one catalog fault on a target role. The registry validates the parameters again here."""
    c = configuration or {}
    fault = REGISTRY.parse(kind, params)
    injector = REGISTRY[kind].injector()
    led = _ledger(c)
    try:
        return injector(fault, target, c, led)
    finally:
        led.close()


def inject_toxic(f: Any, target: str, c: dict[str, Any], led: Ledger) -> dict:
    """A proxy toxic on the target slot's data path; the fault's model names the toxic (`f.toxic()`)."""
    slot = cube.slot_of_role(c["control_url"], target)
    proxy, name = cube.proxy_name(slot), f"chaos-{uuid.uuid4().hex[:12]}"
    toxic_type, attrs = f.toxic()
    iid = led.intend(c["experiment_id"], f.kind, target, f.model_dump(mode="json"),
                     {"op": "remove_toxic", "proxy_url": c["proxy_url"], "proxy": proxy, "name": name}, _ttl(c, f))
    with ProxyClient(c["proxy_url"], timeout=5.0) as p:
        p.add_toxic(proxy, toxic_type, attrs, toxicity=f.toxicity, name=name, ttl_s=_ttl(c, f))
    led.mark_active(iid, f"{f.kind} toxic {name} on {proxy}")
    return {"injection_id": iid, "slot": slot, "proxy": proxy, "toxic": name, "at": time.time()}


def inject_noise(f: Any, target: str, c: dict[str, Any], led: Ledger) -> dict:
    iid = led.intend(c["experiment_id"], f.kind, target, f.model_dump(mode="json"),
                     {"op": "noise_off", "control_url": c["control_url"]}, _ttl(c, f))
    r = httpx.post(f"{c['control_url']}/v1/twin/noise", json={"fraction": f.fraction, "sigma": f.sigma}, timeout=5.0)
    r.raise_for_status()
    led.mark_active(iid, f"noise sigma {f.sigma} on {f.fraction:.0%} of requests")
    return {"injection_id": iid, "at": time.time()}


def inject_sigstop(f: Any, target: str, c: dict[str, Any], led: Ledger) -> dict:
    slot = cube.slot_of_role(c["control_url"], target)
    proc = cube.slot_process(c["twin_state"], slot)
    iid = led.intend(c["experiment_id"], f.kind, target, f.model_dump(mode="json"),
                     {"op": "sigcont", "pid": proc.pid, "create_time": proc.create_time()}, _ttl(c, f))
    proc.send_signal(signal.SIGSTOP)
    led.mark_active(iid, f"SIGSTOP slot {slot} (pid {proc.pid})")
    return {"injection_id": iid, "slot": slot, "pid": proc.pid, "at": time.time()}


def inject_kill(f: Any, target: str, c: dict[str, Any], led: Ledger) -> dict:
    slot = cube.slot_of_role(c["control_url"], target)
    proc = cube.slot_process(c["twin_state"], slot)
    iid = led.intend(c["experiment_id"], f.kind, target, f.model_dump(mode="json"),
                     {"op": "await_slot", "control_url": c["control_url"], "slot": slot,
                      "timeout_s": f.restart_timeout_s}, _ttl(c, f))
    t0 = time.time()
    proc.kill()
    led.mark_active(iid, f"SIGKILL slot {slot} (pid {proc.pid})")
    return {"injection_id": iid, "slot": slot, "pid": proc.pid, "at": t0}


def inject_stressor(f: Any, target: str, c: dict[str, Any], led: Ledger) -> dict:
    """Stressor processes; the fault's model says which and how much (`f.stressor_jobs()`)."""
    tag = "st" + uuid.uuid4().hex[:12]
    iid = led.intend(c["experiment_id"], f.kind, target, f.model_dump(mode="json"),
                     {"op": "kill_stressor", "tag": tag}, _ttl(c, f))
    pids = []
    for what, amount in f.stressor_jobs():  # own session: a crash of the runner must not take them along unrecorded
        p = subprocess.Popen([sys.executable, "-m", "samantha.chaos.providers.stressor", what, "--amount", str(amount),
                              "--duration", str(f.duration_s), "--tag", tag, "--ledger", c["samantha_ledger"],
                              "--reserve-mb", str(c.get("memory_reserve_mb", 256))],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        pids.append(p.pid)
    led.mark_active(iid, f"{f.kind}: stressor pids {pids} (tag {tag})")
    return {"injection_id": iid, "pids": pids, "tag": tag, "at": time.time()}


def inject_disk(f: Any, target: str, c: dict[str, Any], led: Ledger) -> dict:
    d = Path(c["ballast_dir"])
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"ballast-{uuid.uuid4().hex[:12]}.bin"
    iid = led.intend(c["experiment_id"], f.kind, target, f.model_dump(mode="json"),
                     {"op": "remove_file", "path": str(path)}, _ttl(c, f))
    block = b"\0" * 2**20
    with path.open("wb") as fh:
        for _ in range(f.mb):
            fh.write(block)
        fh.flush()
    led.mark_active(iid, f"ballast {path} ({f.mb} MB)")
    return {"injection_id": iid, "path": str(path), "at": time.time()}


def inject_drill(f: Any, target: str, c: dict[str, Any], led: Ledger) -> dict:
    url = c["control_url"]
    before = cube.state(url)["active"]
    other = "B" if before == "A" else "A"
    key = uuid.uuid4().hex[:12]
    iid = led.intend(c["experiment_id"], f.kind, target, f.model_dump(mode="json"),
                     {"op": "restore_active", "control_url": url, "slot": before,
                      "request_id": f"chaos-{key}-back"}, _ttl(c, f))
    t0 = time.perf_counter()
    r = httpx.post(f"{url}/v1/flip", json={"request_id": f"chaos-{key}-to"}, timeout=10.0)
    r.raise_for_status()
    if cube.state(url)["active"] != other:
        raise RuntimeError(f"drill: the Cube did not flip to slot {other}")
    flip_ms = (time.perf_counter() - t0) * 1000
    led.mark_active(iid, f"flipped {before} -> {other}")
    _ABORT.wait(f.hold_s)
    t1 = time.perf_counter()
    detail = revert(led.get(iid)["revert"])  # type: ignore[index]
    back_ms = (time.perf_counter() - t1) * 1000
    if cube.state(url)["active"] != before:
        raise RuntimeError(f"drill: slot {before} is not active again")
    led.mark_reverted(iid, detail)
    return {"injection_id": iid, "from": before, "to": other, "flip_ms": round(flip_ms, 1),
            "back_ms": round(back_ms, 1), "total_ms": round(flip_ms + back_ms, 1), "at": time.time()}


def enable_shadow(configuration: dict[str, Any] | None = None) -> dict:
    """Mirror live requests to the standby so a standby-path fault is observed without touching users."""
    c = configuration or {}
    url = c["control_url"]
    if cube.state(url)["shadow"]:
        return {"changed": False}
    led = _ledger(c)
    try:
        key = uuid.uuid4().hex[:12]
        iid = led.intend(c["experiment_id"], "shadow", "standby", {},
                         {"op": "shadow", "control_url": url, "enabled": False, "request_id": f"chaos-{key}-off"},
                         float(c.get("experiment_ttl_s", 600)))
        r = httpx.post(f"{url}/v1/shadow", json={"request_id": f"chaos-{key}-on", "enabled": True}, timeout=5.0)
        r.raise_for_status()
        led.mark_active(iid, "shadow on")
        return {"changed": True, "injection_id": iid}
    finally:
        led.close()


def settle(seconds: float, configuration: dict[str, Any] | None = None) -> dict:
    """Let a baseline accumulate (e.g. shadow traffic on the standby) before the fault goes in."""
    waited = min(max(float(seconds), 0.0), 30.0)
    _ABORT.wait(waited)
    return {"settled_s": waited}


def hold(duration_s: float, configuration: dict[str, Any] | None = None) -> dict:
    """Keep the faults in for duration_s, or until the steady-state hypothesis deviates."""
    t0 = time.monotonic()
    aborted = _ABORT.wait(max(0.0, float(duration_s)))
    return {"held_s": round(time.monotonic() - t0, 3), "aborted": aborted}


def await_restart(role_slot: str, timeout_s: float, configuration: dict[str, Any] | None = None) -> dict:
    """After kill_slot: how long until the slot answers healthy again (raises past timeout_s)."""
    c = configuration or {}
    t0 = time.monotonic()
    detail = revert({"op": "await_slot", "control_url": c["control_url"], "slot": role_slot, "timeout_s": timeout_s})
    return {"restart_s": round(time.monotonic() - t0, 3), "detail": detail}


def revert_experiment(configuration: dict[str, Any] | None = None) -> dict:
    """The rollback: revert every open ledger entry of this experiment, newest first."""
    c = configuration or {}
    led = _ledger(c)
    try:
        done = led.revert_open(revert, experiment_id=c["experiment_id"])
    finally:
        led.close()
    failed = [d for d in done if not d["reverted"]]
    if failed:
        raise RuntimeError(f"{len(failed)} revert(s) failed: {failed}")
    return {"reverted": done, "at": time.time()}
