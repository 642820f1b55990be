"""Record real twin telemetry for the judge bench fit and the bad-canary backtest fixture.

Run from a checkout that has the twin (samantha/twin): starts `telemetry serve` and
`twin up` (200 rps, shadow on), runs an A/A phase (standby = the active's model,
re-signed as another version), then a bad canary (error_rate 0.2), stops everything
and exports Parquet. Usage: python benchmarks/record_twin.py OUT_DIR [--aa 90] [--bad 40]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--aa", type=float, default=90)
    ap.add_argument("--bad", type=float, default=40)
    ap.add_argument("--rps", type=float, default=200)
    a = ap.parse_args()
    out = a.out.absolute()
    state = out / "state"
    state.mkdir(parents=True, exist_ok=True)
    from samantha.api.daemon_process import free_port

    port = free_port()
    cfg = out / "samantha.yaml"
    cfg.write_text(json.dumps({
        "data_dir": str(state),
        "twin": {"router_port": 0, "control_port": 0, "slot_a_port": 0, "slot_b_port": 0, "proxy_api_port": 0,
                 "proxy_a_port": 0, "proxy_b_port": 0, "loadgen_port": 0, "use_proxy": False, "rps": a.rps,
                 "ingest_url": f"http://127.0.0.1:{port}/v1/ingest/requests"}}))
    env = {**os.environ, "SAMANTHA_CONFIG": str(cfg)}
    py = [sys.executable, "-m", "samantha"]
    serve = subprocess.Popen([*py, "telemetry", "serve", "--port", str(port)], env=env,
                             stdout=subprocess.DEVNULL, stderr=open(out / "serve.log", "wb"))  # noqa: SIM115
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        st = json.loads(subprocess.run([*py, "twin", "up", "--json", "--rps", str(a.rps)], env=env, check=True,
                                       capture_output=True, text=True).stdout)
        ctl = f"http://127.0.0.1:{st['ports']['control_port']}"
        from samantha.config import load_config  # noqa: I001 (samantha.twin lives on wip/twin)
        from samantha.signing import KeyPair
        from samantha.twin.bundle import build_bundle
        from samantha.twin.fault_profile import FaultProfile
        from samantha.twin.supervisor import TwinPaths

        paths = TwinPaths.of(load_config(cfg))
        key = KeyPair.load(paths.signing_key)
        aa = paths.bundles_dir / "sensor-mlp-1b"
        bad = paths.bundles_dir / "sensor-mlp-2-bad"
        build_bundle(aa, name="sensor-mlp", version="1b", seed=0, key=key)
        build_bundle(bad, name="sensor-mlp", version="2", seed=0, key=key, profile=FaultProfile(error_rate=0.2))

        def op(name: str, **body: object) -> None:
            r = httpx.post(f"{ctl}/v1/{name}", json={"request_id": str(uuid.uuid4()), **body}, timeout=30)
            r.raise_for_status()

        def event(kind: str, **attrs: object) -> None:
            line = json.dumps({"ts": time.time(), "kind": kind, "source": "record_twin", "attrs": attrs})
            httpx.post(f"{base}/v1/ingest/events", content=line, timeout=5).raise_for_status()

        time.sleep(10)  # incumbent-only warm-up: the latency threshold's baseline
        op("load", bundle=str(aa))
        op("shadow", enabled=True)
        event("rollout.start", bundle="sensor-mlp@1b", note="A/A: same weights as the active")
        op("weights", standby=5)
        time.sleep(a.aa)
        op("weights", standby=0)
        op("load", bundle=str(bad))
        op("shadow", enabled=True)
        event("rollout.start", bundle="sensor-mlp@2", note="bad canary: error_rate 0.2")
        op("weights", standby=1)
        time.sleep(a.bad)
        op("weights", standby=0)
        time.sleep(1)
    finally:
        subprocess.run([*py, "twin", "down"], env=env, capture_output=True)
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(20)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
    subprocess.run([*py, "telemetry", "export", "--parquet", str(out / "parquet")], env=env, check=True)


if __name__ == "__main__":
    main()
