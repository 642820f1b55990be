"""How providers find the Cube's parts: the control API, the proxy API, and slot processes.

The twin records its ports and child pids in its state file; a real Cube would
answer the same questions through its runtime.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import psutil


def state(control_url: str) -> dict[str, Any]:
    r = httpx.get(f"{control_url}/v1/state", timeout=5.0)
    r.raise_for_status()
    return r.json()


def slot_of_role(control_url: str, role: str) -> str:
    """Slot name (A|B) that has `role` now."""
    st = state(control_url)
    return st["active"] if role == "active" else ("B" if st["active"] == "A" else "A")


def slot_process(twin_state: str | Path, slot: str) -> psutil.Process:
    """The slot's process, read from the twin's state file at call time (the supervisor rewrites it on restart)."""
    doc = json.loads(Path(twin_state).read_text())
    pid = doc["children"][f"slot-{slot.lower()}"]
    proc = psutil.Process(pid)
    if "samantha.twin.slot" not in " ".join(proc.cmdline()):
        raise RuntimeError(f"pid {pid} is not a slot process")
    return proc


def proxy_name(slot: str) -> str:
    return f"slot-{slot.lower()}"
