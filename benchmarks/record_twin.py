"""Record real twin telemetry for the judge bench fit and the bad-canary backtest fixture.

Run from a checkout that has the twin (samantha/twin): starts `telemetry serve` and
`twin up` (200 rps, shadow on), runs an A/A phase (standby = the active's model,
re-signed as another version), then a bad canary (error_rate 0.2), stops everything
and exports Parquet. Usage: python benchmarks/record_twin.py OUT_DIR [--aa 90] [--bad 40] [--stress N]

It prints the A/A phase's shadow bias as JSON: how the standby's shadow-scored latencies
compare with the active's live ones when both serve the same model. `--stress N` runs N
busy-loop processes throughout, to see the bias on a CPU-saturated Cube.
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
    ap.add_argument("--stress", type=int, default=0, help="busy-loop processes to run alongside")
    a = ap.parse_args()
    out = a.out.absolute()
    state = out / "state"
    state.mkdir(parents=True, exist_ok=True)
    from samantha.harness.daemon_process import free_port

    port = free_port()
    cfg = out / "samantha.yaml"
    cfg.write_text(json.dumps({
        "data_dir": str(state),
        "twin": {"router_port": 0, "control_port": 0, "slot_a_port": 0, "slot_b_port": 0, "proxy_api_port": 0,
                 "proxy_a_port": 0, "proxy_b_port": 0, "loadgen_port": 0, "use_proxy": False, "rps": a.rps,
                 "ingest_url": f"http://127.0.0.1:{port}/v1/ingest/requests"}}))
    env = {**os.environ, "SAMANTHA_CONFIG": str(cfg)}
    py = [sys.executable, "-m", "samantha"]
    burners = [subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 3600\n"
                                 "while time.time() < end: pass"]) for _ in range(a.stress)]
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
        from samantha.core.config import load_config  # noqa: I001 (samantha.twin lives on wip/twin)
        from samantha.cube.bundle import SigningKey
        from samantha.twin.toy_bundle import build_bundle
        from samantha.cube.fault_profile import FaultProfile
        from samantha.twin.supervisor import TwinPaths

        paths = TwinPaths.of(load_config(cfg))
        key = SigningKey.load(paths.signing_key)
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
        aa_window = (time.time() + 2, time.time() + a.aa)  # skip the first seconds: samples in flight
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
        for b in burners:
            b.kill()
        subprocess.run([*py, "twin", "down"], env=env, capture_output=True)
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(20)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
    subprocess.run([*py, "telemetry", "export", "--parquet", str(out / "parquet")], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    print(json.dumps(aa_bias(out / "parquet" / "requests.parquet", aa_window, a.stress)))


def aa_bias(requests: Path, window: tuple[float, float], stress: int) -> dict[str, object]:
    """Shadow vs live latency while both slots serve the same model: 1.0 and 0.5 mean no bias."""
    import duckdb

    q = f"""SELECT slot, shadow, latency_ms FROM read_parquet('{requests}')
            WHERE ok AND ts BETWEEN {window[0]} AND {window[1]}"""
    rows = duckdb.sql(q).fetchall()
    live = sorted(r[2] for r in rows if r[0] == "active" and not r[1])
    shadow = sorted(r[2] for r in rows if r[0] == "standby" and r[1])
    if not live or not shadow:
        return {"error": "no A/A samples", "live": len(live), "shadow": len(shadow)}

    def pct(xs: list[float], q: float) -> float:  # xs sorted
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    p50, p99, shadow_p50 = pct(live, 0.5), pct(live, 0.99), pct(shadow, 0.5)
    over50 = sum(x > p50 for x in shadow) / len(shadow)
    over99 = sum(x > p99 for x in shadow) / len(shadow)
    return {"stress_procs": stress, "live_n": len(live), "shadow_n": len(shadow),
            "live_p50_ms": round(p50, 3), "shadow_p50_ms": round(shadow_p50, 3),
            "median_ratio": round(shadow_p50 / p50, 3),
            "shadow_over_live_p50": round(over50, 4), "odds_p50": round(over50 / 0.5, 3),
            "shadow_over_live_p99": round(over99, 4), "odds_p99": round(over99 / 0.01, 3),
            "loadavg_1m": round(os.getloadavg()[0], 2)}


if __name__ == "__main__":
    main()
