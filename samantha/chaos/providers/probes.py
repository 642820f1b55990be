"""Chaos Toolkit probes: the steady-state hypothesis asks Samantha's gates, over her local API.

A probe answers True unless the gate fails (inconclusive is no evidence of harm). Any
error reaching Samantha raises, and chaoslib then counts the hypothesis as not met:
an experiment that cannot see its guard stops. Each verdict is appended to the
experiment's probe log for the findings.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx


def _auth(c: dict[str, Any]) -> dict[str, str]:
    """The daemon's API wants an operator: the local token file (its path is in the configuration, never the token)."""
    path = c.get("samantha_token_file")
    try:
        token = Path(path).read_text().strip() if path else ""
    except OSError:
        token = ""
    return {"Authorization": f"Bearer {token}"} if token else {}


def gate_ok(gate: str, spec: dict[str, Any] | None = None, configuration: dict[str, Any] | None = None) -> bool:
    """`gate` names a registered gate; with `spec`, an inline guard gate of that name."""
    c = configuration or {}
    body = {"specs": [spec]} if spec is not None else {"names": [gate]}
    r = httpx.post(f"{c['samantha_api']}/v1/chaos/gates", json=body, timeout=5.0, headers=_auth(c))
    r.raise_for_status()
    v = r.json()["verdicts"][0]
    if c.get("probe_log"):
        with open(c["probe_log"], "a") as f:
            f.write(json.dumps({"at": time.time(), "experiment_id": c.get("experiment_id"), **v}) + "\n")
    return v["status"] != "fail"
