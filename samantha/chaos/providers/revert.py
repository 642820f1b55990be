"""Undo one ledger entry. Idempotent: reverting what is already undone (or never happened) is a no-op.

A revert document is self-contained ({"op": ..., everything it needs}), so recovery after
a crash needs nothing but the ledger row.
"""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from samantha.cube.proxy_client import ProxyClient

STRESSOR_MODULE = "samantha.chaos.providers.stressor"


def revert(doc: dict[str, Any]) -> str:
    op = doc.get("op")
    fn = _OPS.get(str(op))
    if fn is None:
        raise ValueError(f"unknown revert op {op!r}")
    return fn(doc)


def _remove_toxic(d: dict[str, Any]) -> str:
    with ProxyClient(d["proxy_url"], timeout=5.0) as c:
        gone = c.remove_toxic(d["proxy"], d["name"])
    return f"toxic {d['proxy']}/{d['name']} {'deleted' if gone else 'already absent'}"


def _same_process(d: dict[str, Any]) -> psutil.Process | None:
    try:
        p = psutil.Process(int(d["pid"]))
        if abs(p.create_time() - float(d["create_time"])) > 0.01:
            return None  # pid reused by another process
        return p
    except psutil.Error:
        return None


def _sigcont(d: dict[str, Any]) -> str:
    p = _same_process(d)
    if p is None:
        return f"pid {d['pid']} gone: nothing to continue"
    p.send_signal(signal.SIGCONT)
    return f"SIGCONT sent to pid {d['pid']}"


def _arg(cmd: list[str], flag: str) -> str | None:
    with contextlib.suppress(ValueError, IndexError):
        return cmd[cmd.index(flag) + 1]
    return None


def stressors(tag: str | None = None, ledger: str | None = None) -> list[psutil.Process]:
    """Live stressor processes, found by command line: all, those of one ledger entry (`tag`), or those one
    Cube's ledger recorded (`ledger`; another Cube's or another run's on the same host are not this one's)."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info.get("cmdline") or []
        if not any(c == STRESSOR_MODULE for c in cmd):
            continue
        if (tag is not None and _arg(cmd, "--tag") != tag) or (ledger is not None and _arg(cmd, "--ledger") != ledger):
            continue
        with contextlib.suppress(psutil.Error):
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
    return out


def _kill_stressor(d: dict[str, Any]) -> str:
    procs = stressors(d["tag"])
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(procs, timeout=3)
    return f"{len(procs)} stressor process(es) killed"


def _remove_file(d: dict[str, Any]) -> str:
    p = Path(d["path"])
    existed = p.exists()
    p.unlink(missing_ok=True)
    return f"{p} {'removed' if existed else 'already absent'}"


def _noise_off(d: dict[str, Any]) -> str:
    r = httpx.post(f"{d['control_url']}/v1/twin/noise", json={"fraction": 0, "sigma": 0}, timeout=5.0)
    r.raise_for_status()
    return "router input noise off"


def _shadow(d: dict[str, Any]) -> str:
    enabled = bool(d["enabled"])
    r = httpx.post(f"{d['control_url']}/v1/shadow", json={"request_id": d["request_id"], "enabled": enabled},
                   timeout=5.0)
    if r.status_code >= 400 and r.status_code != 409:
        r.raise_for_status()
    return f"shadow {'on' if enabled else 'off'} (as before the experiment)"


def _restore_active(d: dict[str, Any]) -> str:
    url = d["control_url"]
    st = httpx.get(f"{url}/v1/state", timeout=5.0).json()
    if st["active"] == d["slot"]:
        return f"slot {d['slot']} already active"
    deadline = time.monotonic() + float(d.get("timeout_s", 10.0))
    while True:  # the slot we flip back to may need a moment to answer healthy again
        r = httpx.post(f"{url}/v1/flip", json={"request_id": d["request_id"]}, timeout=10.0)
        if r.status_code < 400:
            return f"flipped back to slot {d['slot']}"
        if time.monotonic() > deadline:
            raise RuntimeError(f"flip back refused: {r.text[:200]}")
        time.sleep(0.2)


def _await_slot(d: dict[str, Any]) -> str:
    """A killed slot is restarted by the supervisor; the revert verifies it answers healthy again."""
    url, deadline = d["control_url"], time.monotonic() + float(d.get("timeout_s", 15.0))
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            st = httpx.get(f"{url}/v1/state", timeout=2.0).json()
            if next(s for s in st["slots"] if s["name"] == d["slot"])["healthy"]:
                return f"slot {d['slot']} healthy again"
        time.sleep(0.1)
    raise RuntimeError(f"slot {d['slot']} not healthy within {d.get('timeout_s', 15.0)} s")


_OPS = {"remove_toxic": _remove_toxic, "sigcont": _sigcont, "kill_stressor": _kill_stressor,
        "remove_file": _remove_file, "noise_off": _noise_off, "shadow": _shadow,
        "restore_active": _restore_active, "await_slot": _await_slot}


def is_stopped(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_STOPPED
    except psutil.Error:
        return False
