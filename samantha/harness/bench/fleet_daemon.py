"""The daemon's own cost of the NATS uplink against today's HTTP uplink, in one run.

Two real daemons (`samantha run`), one after the other on the same machine, each ticking its uplink
every second with no twin beside it (so the uplink is most of what it does): one whose hub is the fleet
bench's regional leaf (`nats://`, the JetStream link), one whose hub is the HTTP hub (`python -m
samantha.hub`). After a warm-up, RSS/USS and the CPU share of one core over the same window.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from samantha.core.config import SamanthaConfig
from samantha.core.ports import free_port
from samantha.harness.daemon_process import DaemonProcess, write_config
from samantha.harness.hub_process import spawn_hub


def _one(root: Path, name: str, hub_url: str, region: str, seconds: float, warmup: float) -> dict[str, Any]:
    cfg = SamanthaConfig.model_validate({
        "data_dir": str(root / "state"), "api": {"port": free_port()},
        "uplink": {"hub_url": hub_url, "cube_id": f"daemon-{name}", "region": region, "interval_s": 1.0,
                   "timeout_s": 2.0, "backoff_initial_s": 0.5, "backoff_max_s": 1.0}})
    with DaemonProcess(cfg, write_config(cfg, root / "samantha.yaml"), log=root / "daemon.log") as d:
        d.start().wait_ready(120)
        time.sleep(warmup)
        d.cpu_mark()
        rss: list[float] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rss.append(d.footprint()["rss_mb"])
            time.sleep(1.0)
        fp = d.footprint()
        st = d.get("/v1/uplink/status")
        return {"cpu_pct_of_one_core": fp.get("cpu_pct"), "rss_mb_max": max(rss, default=fp["rss_mb"]),
                "uss_mb": fp["uss_mb"], "window_s": fp.get("cpu_window_s"),
                "synced": st.get("last_sync_at") is not None, "pending_batches": st["outbox"]["pending_batches"]}


def daemon_uplinks(root: Path, nats_url: str, *, region: str, seconds: float = 20.0,
                   warmup: float = 5.0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with spawn_hub(root / "http-hub") as http_hub:
        for name, url in (("nats", nats_url), ("http", http_hub.value)):
            out[name] = _one(root / f"daemon-{name}", name, url, region, seconds, warmup)
    n, h = out["nats"], out["http"]
    if n["cpu_pct_of_one_core"] is not None and h["cpu_pct_of_one_core"] is not None:
        out["cpu_pct_nats_minus_http"] = round(n["cpu_pct_of_one_core"] - h["cpu_pct_of_one_core"], 2)
    out["rss_mb_nats_minus_http"] = round(n["rss_mb_max"] - h["rss_mb_max"], 1)
    out["note"] = ("each daemon alone, no twin: the uplink tick (collect, sync each second) is most of its work; "
                   "sequential, on a shared machine, so a difference of a few percent is noise")
    return out
