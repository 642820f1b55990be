"""`twin up|down|status`: start the supervisor in its own session, stop its whole group, report."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from samantha.core.config import SamanthaConfig
from samantha.twin.supervisor import TwinPaths


class TwinError(RuntimeError):
    pass


def read_state(config: SamanthaConfig) -> dict[str, Any] | None:
    p = TwinPaths.of(config).state_file
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def group_members(pgid: int) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(p.pid) == pgid:
                out.append(p)
    return out


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def up(config: SamanthaConfig, *, rps: float | None = None, timeout_s: float = 60.0,
       fresh: bool = False) -> dict[str, Any]:
    """Start the twin in the background; return its state once every process answers.

    The twin resumes the state left in its run dir (slot bundles, weights, quarantine), as a Cube does
    after a reboot; `fresh` forgets it first.
    """
    st = read_state(config)
    if st and _alive(st["pid"]):
        raise TwinError(f"the twin is already running (supervisor pid {st['pid']}); run `samantha twin down` first")
    paths = TwinPaths.of(config)
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    paths.state_file.unlink(missing_ok=True)
    if fresh:
        for name in ("router.json", "slot-a.json", "slot-b.json"):
            (paths.run_dir / name).unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "samantha.twin.supervisor", "--config-json", config.model_dump_json()]
    if rps is not None:
        cmd += ["--rps", str(rps)]
    log = open(paths.run_dir / "supervisor.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=os.environ.copy(), start_new_session=True)
    log.close()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = (paths.run_dir / "supervisor.log").read_text(errors="replace")[-2000:]
                raise TwinError(f"the twin supervisor exited with {proc.returncode}:\n{tail}")
            st = read_state(config)
            if st and st.get("ready"):
                return st
            time.sleep(0.05)
        raise TwinError(f"the twin did not become ready within {timeout_s:.0f} s (logs in {paths.run_dir})")
    except BaseException:  # Ctrl-C or failure while starting: nothing may outlive us
        _kill_group(proc.pid)
        raise


def _kill_group(pgid: int, grace_s: float = 8.0) -> int:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        left = [p for p in group_members(pgid) if _alive(p.pid)]
        if not left:
            break
        time.sleep(0.05)
    left = [p for p in group_members(pgid) if _alive(p.pid)]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pgid, os.WNOHANG)
    return len(left)


def down(config: SamanthaConfig) -> dict[str, Any]:
    st = read_state(config)
    if st is None:
        return {"stopped": False, "reason": "no twin running here"}
    killed = _kill_group(st["pgid"])
    TwinPaths.of(config).state_file.unlink(missing_ok=True)
    left = [p.pid for p in group_members(st["pgid"]) if _alive(p.pid)]
    return {"stopped": True, "pgid": st["pgid"], "force_killed": killed, "left": left}


def status(config: SamanthaConfig) -> dict[str, Any]:
    st = read_state(config)
    if st is None:
        return {"running": False}
    base = f"http://{st['host']}"
    out: dict[str, Any] = {"running": _alive(st["pid"]), "ready": st.get("ready"), "supervisor_pid": st["pid"],
                           "ports": st["ports"], "proxy": st["proxy"], "restarts": st.get("restarts", {}),
                           "processes": {n: {"pid": pid, "alive": _alive(pid)} for n, pid in st["children"].items()}}
    with httpx.Client(timeout=2.0) as c:
        for key, url in (("cube", f"{base}:{st['ports']['control_port']}/v1/state"),
                         ("router", f"{base}:{st['ports']['control_port']}/v1/twin/stats"),
                         ("loadgen", f"{base}:{st['ports']['loadgen_port']}/stats?last=3")):
            try:
                out[key] = c.get(url).json()
            except (httpx.HTTPError, ValueError) as e:
                out[key] = {"error": f"{type(e).__name__}: {e}"}
    return out


def control_url(st: dict[str, Any]) -> str:
    return f"http://{st['host']}:{st['ports']['control_port']}"


def loadgen_url(st: dict[str, Any]) -> str:
    return f"http://{st['host']}:{st['ports']['loadgen_port']}"


def slot_url(st: dict[str, Any], slot: str) -> str:
    return f"http://{st['host']}:{st['ports'][f'slot_{slot.lower()}_port']}"


def run_dir(st: dict[str, Any]) -> Path:
    return Path(st["run_dir"])
