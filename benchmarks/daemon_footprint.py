"""Daemon footprint at a steady load: RSS and CPU of `samantha run` beside a twin, no LLM.

Starts a twin (ephemeral ports, load generator at --rps, telemetry pushed to the daemon),
starts the daemon with the shipped playbooks, lets it warm up, then samples the daemon
process with psutil for --seconds. Prints one JSON object: daemon_rss_mb (max and last),
daemon_cpu_pct (of one core, mean over the window), the steady-state loop timings from
/v1/status (cycle and graph-overhead p50/p95, per-node ms), ingested rows and the host
load average (the machine is shared: read CPU figures against it).
Usage: python benchmarks/daemon_footprint.py [--rps 200] [--seconds 30] [--warmup 10]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import yaml


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rps", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=10)
    args = ap.parse_args()
    from samantha.api.client import auth_headers
    from samantha.config import SamanthaConfig
    from samantha.twin import lifecycle

    tmp = Path(tempfile.mkdtemp(prefix="samantha-footprint-"))
    port = _free_port()
    ports = {k: 0 for k in ("router_port", "control_port", "slot_a_port", "slot_b_port", "proxy_api_port",
                            "proxy_a_port", "proxy_b_port", "loadgen_port")}
    cfg = SamanthaConfig.model_validate({"data_dir": str(tmp / "state"), "api": {"port": port},
                                         "twin": {**ports, "rps": args.rps,
                                                  "ingest_url": f"http://127.0.0.1:{port}/v1/ingest/requests"}})
    cfg_path = tmp / "samantha.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude_defaults=True)))
    lifecycle.up(cfg)
    proc = None
    try:
        proc = subprocess.Popen([sys.executable, "-m", "samantha", "run", "-c", str(cfg_path)],
                                stdout=(tmp / "daemon.log").open("ab"), stderr=subprocess.STDOUT, env=os.environ.copy())
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        time.sleep(args.warmup)
        p = psutil.Process(proc.pid)
        rss, t_cpu0, t0 = [], sum(p.cpu_times()[:2]), time.monotonic()
        st0 = httpx.get(url + "/v1/status", timeout=10, headers=auth_headers(cfg)).json()
        while time.monotonic() - t0 < args.seconds:
            rss.append(p.memory_info().rss / 2**20)
            time.sleep(0.5)
        cpu = (sum(p.cpu_times()[:2]) - t_cpu0) / (time.monotonic() - t0) * 100
        st = httpx.get(url + "/v1/status", timeout=10, headers=auth_headers(cfg)).json()
        loop = st["loop"]
        out = {"rps": args.rps, "seconds": args.seconds, "daemon_rss_mb_max": round(max(rss), 1),
               "daemon_rss_mb_last": round(rss[-1], 1), "daemon_cpu_pct": round(cpu, 1),
               "cycles_per_s": round((loop["cycles"] - st0["loop"]["cycles"]) / args.seconds, 2),
               "cycle_ms_p50": loop["cycle_ms_p50"], "cycle_ms_p95": loop["cycle_ms_p95"],
               "graph_overhead_ms_p50": loop["graph_overhead_ms_p50"],
               "graph_overhead_ms_p95": loop["graph_overhead_ms_p95"], "node_ms_last": loop["node_ms"],
               "checkpoints": loop["checkpoints"], "loop_errors": loop["errors"],
               "rows_accepted": st["telemetry"]["accepted"], "actions": st["actions"],
               "open_incidents": len(st["open_incidents"]), "loadavg_1m": round(os.getloadavg()[0], 2),
               "cpus": os.cpu_count()}
        print(json.dumps(out))
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        lifecycle.down(cfg)


if __name__ == "__main__":
    main()
