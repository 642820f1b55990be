"""Daemon footprint at a steady load: RSS and CPU of `samantha run` beside a twin, no LLM.

Starts a twin (ephemeral ports, load generator at --rps, telemetry pushed to the daemon),
starts the daemon with the shipped playbooks, lets it warm up, then samples the daemon
process with psutil for --seconds. Prints one JSON object: daemon_rss_mb (max and last),
daemon_cpu_pct (of one core, mean over the window), the steady-state loop timings from
/v1/status (cycle and graph-overhead p50/p95, per-node ms), ingested rows and the host
load average (the machine is shared: read CPU figures against it).
With --profile FILE, py-spy samples the daemon over the window (raw collapsed stacks to FILE).
Usage: python benchmarks/daemon_footprint.py [--rps 200] [--seconds 30] [--warmup 10] [--profile FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rps", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=10)
    ap.add_argument("--profile", type=Path, default=None)
    args = ap.parse_args()
    from samantha.core.config import SamanthaConfig
    from samantha.harness.daemon_process import DaemonProcess, free_port, write_config
    from samantha.twin import lifecycle

    tmp = Path(tempfile.mkdtemp(prefix="samantha-footprint-"))
    port = free_port()
    ports = {k: 0 for k in ("router_port", "control_port", "slot_a_port", "slot_b_port", "proxy_api_port",
                            "proxy_a_port", "proxy_b_port", "loadgen_port")}
    cfg = SamanthaConfig.model_validate({"data_dir": str(tmp / "state"), "api": {"port": port},
                                         "twin": {**ports, "rps": args.rps,
                                                  "ingest_url": f"http://127.0.0.1:{port}/v1/ingest/requests"}})
    lifecycle.up(cfg)
    try:
        with DaemonProcess(cfg, write_config(cfg, tmp / "samantha.yaml"), log=tmp / "daemon.log") as d:
            d.start().wait_ready(90, verdicts=True)
            time.sleep(args.warmup)
            spy = None
            spy_bin = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            if args.profile is not None and Path(spy_bin).exists():
                spy = subprocess.Popen([spy_bin, "record", "-p", str(d.pid), "-d", str(int(args.seconds)), "-r", "50",
                                        "-f", "raw", "-o", str(args.profile), "--nonblocking"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            st0 = d.client.status()
            d.cpu_mark()
            rss, uss = [], []
            t0 = time.monotonic()
            while time.monotonic() - t0 < args.seconds:
                f = d.footprint()
                rss.append(f["rss_mb"])
                uss.append(f["uss_mb"])
                time.sleep(1.0)
            cpu = d.footprint()["cpu_pct"]
            st = d.client.status()
            if spy is not None:
                spy.wait(args.seconds + 30)
            loop = st["loop"]
            out = {"rps": args.rps, "seconds": args.seconds, "daemon_rss_mb_max": max(rss),
                   "daemon_rss_mb_last": rss[-1], "daemon_uss_mb_max": max(uss), "daemon_cpu_pct": cpu,
                   "quiet_cycles": loop["quiet_cycles"] - st0["loop"]["quiet_cycles"], "cycles_per_s": round((loop["cycles"] - st0["loop"]["cycles"]) / args.seconds, 2),
                   "cycle_ms_p50": loop["cycle_ms_p50"], "cycle_ms_p95": loop["cycle_ms_p95"],
                   "graph_overhead_ms_p50": loop["graph_overhead_ms_p50"],
                   "graph_overhead_ms_p95": loop["graph_overhead_ms_p95"], "node_ms_last": loop["node_ms"],
                   "loop_errors": loop["errors"], "rows_accepted": st["telemetry"]["accepted"],
                   "actions": st["actions"], "open_incidents": len(st["open_incidents"]),
                   "loadavg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
            print(json.dumps(out))
    finally:
        lifecycle.down(cfg)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
