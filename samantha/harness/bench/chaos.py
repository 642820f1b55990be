"""`samantha bench chaos`: pre-flight over generated proposals, leftovers after SIGKILL, abort latency.

- proposals / sanctioned / escalated / rejected / preflight_violations: >= 10,000 generated
  proposals (adversarial ones included) through pre-flight, each checked against the
  independent oracle (samantha/harness/chaos_oracle.py). Target: 0 violations.
- leftover_faults_after_kill: a real twin and a real daemon (`samantha run`); 20 times: start an
  experiment, SIGKILL the daemon once its fault is in, restart it (start-up recovery), count
  toxics, stopped slots, stressor processes, ballast files and router noise left. Target 0.
- experiment_abort_s: a standby-latency experiment whose guard gate breaches; from the first
  failing probe to the fault's ledger entry reverted. Target <= 2 s.
"""

from __future__ import annotations

import contextlib
import random
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from samantha.core.config import SamanthaConfig
from samantha.harness.chaos_oracle import beyond_policy, random_input, random_proposal
from samantha.kernel.preflight import check

if TYPE_CHECKING:
    from samantha.harness.daemon_process import DaemonProcess

KILL_CASES = [("latency", "standby", {"latency_ms": 300, "duration_s": 60}),
              ("sigstop", "standby", {"duration_s": 50}),
              ("memory_hog", "host", {"mb": 32, "duration_s": 60}),
              ("disk_pressure", "host", {"mb": 8, "duration_s": 60}),
              ("input_noise", "router", {"fraction": 0.02, "sigma": 1.0, "duration_s": 60}),
              ("http_error", "standby", {"toxicity": 1.0, "duration_s": 60})]
ABORT_TEMPLATE = """title: abort latency probe
target: standby
fault: {kind: latency, latency_ms: 300, duration_s: 30}
guards:
  - {kind: threshold, name: standby-p99-guard, metric: latency_ms, aggregate: p99, op: "<=", value: 150,
     slot: standby, include_shadow: true, window: 3s, min_samples: 20}
"""


def preflight_bench(n: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    verdicts: Counter[str] = Counter()
    violations = 0
    t0 = time.perf_counter()
    for _ in range(n):
        inp = random_input(rng, random_proposal(rng))
        r = check(inp)
        verdicts[r.verdict] += 1
        if r.verdict == "sanctioned" and beyond_policy(inp):
            violations += 1
    dt = time.perf_counter() - t0
    return {"proposals": n, "sanctioned": verdicts["sanctioned"], "escalated": verdicts["escalate"],
            "rejected": verdicts["reject"], "preflight_violations": violations,
            "preflight_us_per_proposal": round(dt / n * 1e6, 1)}


TWIN_PORTS = ("router_port", "control_port", "slot_a_port", "slot_b_port", "proxy_api_port", "proxy_a_port",
              "proxy_b_port", "loadgen_port")


def chaos_daemon_config(work: Path, *, probe_interval_s: float) -> SamanthaConfig:
    """A daemon with chaos mode on a free port and a twin on ephemeral ports feeding it. No playbooks and
    no LLM: chaos alone acts on the Cube."""
    from samantha.core.ports import free_port

    port = free_port()
    return SamanthaConfig.model_validate({
        "data_dir": str((work / "state").absolute()), "api": {"port": port},
        "twin": {**dict.fromkeys(TWIN_PORTS, 0), "rps": 100,
                 "ingest_url": f"http://127.0.0.1:{port}/v1/ingest/requests"},
        "sre": {"playbook_dirs": []}, "llm": {"enabled": False},
        "chaos": {"probe_interval_s": probe_interval_s}})


def _wait(pred: Any, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
            if pred():
                return True
        time.sleep(interval)
    return False


def live_bench(kills: int, aborts: int, progress: Any = None) -> dict[str, Any]:
    from samantha.harness.daemon_process import DaemonProcess, write_config
    from samantha.twin import lifecycle

    work = Path(tempfile.mkdtemp(prefix="samantha-chaos-bench-"))
    config = chaos_daemon_config(work, probe_interval_s=0.25)
    out: dict[str, Any] = {"kills": 0, "leftover_faults_after_kill": 0, "leftover_detail": [], "kill_skipped": []}
    lifecycle.up(config)  # first: the daemon finds the Cube through the twin's state file
    try:
        with DaemonProcess(config, write_config(config, work / "samantha.yaml"), log=work / "daemon.log") as daemon:
            daemon.start().wait_ready()
            time.sleep(3)
            selftest = daemon.post("/v1/chaos/selftest").json()["results"]
            out["selftest_failed"] = {k: v for k, v in selftest.items() if v != "ok"}
            for i in range(kills):
                kind, target, params = KILL_CASES[i % len(KILL_CASES)]
                proposal = {"kind": kind, "target": target, "params": params}
                if not _wait(lambda p=proposal: daemon.post("/v1/chaos/preflight", json=p).json()["verdict"] == "sanctioned",
                             60, 0.5):
                    out["kill_skipped"].append(kind)
                    continue
                t = threading.Thread(target=_swallow, args=(daemon, proposal), daemon=True)
                t.start()
                injected = _wait(lambda k=kind: any(e["kind"] == k and e["state"] == "active" for e in
                                                    daemon.get("/v1/chaos/ledger", params={"open_only": True})
                                                    ["injections"]), 30)
                time.sleep(random.Random(i).uniform(0.0, 1.0))  # somewhere mid-experiment
                daemon.kill()
                t.join(10)
                daemon.start().wait_ready()  # start-up recovery reverts the ledger
                left = daemon.get("/v1/chaos/leftovers")
                noise = bool((left.get("noise") or {}).get("fraction"))
                n = left.get("total", 0)
                n = max(n, len(left["toxics"]) + len(left["stopped"]) + len(left["stressors"])
                        + len(left["ballast"]) + noise)
                out["kills"] += 1
                out["leftover_faults_after_kill"] += n
                if n or not injected:
                    out["leftover_detail"].append({"kind": kind, "injected": injected, "left": left})
                if progress:
                    progress(f"kill {i + 1}/{kills}: {kind}, leftovers {n}")
            abort_s = []
            for i in range(aborts):
                _wait(lambda: daemon.post("/v1/chaos/preflight", json={"kind": "latency", "target": "standby",
                                                                     "params": {"latency_ms": 300}}).json()["verdict"]
                      == "sanctioned", 60, 0.5)
                for _ in range(10):  # the guard must hold before a run starts (the last run's fault may linger)
                    r = daemon.post("/v1/chaos/run", json={"template": ABORT_TEMPLATE, "source": "bench-abort"}).json()
                    not_started = r.get("outcome") == "failed" and not r.get("injections")  # before-hypothesis unmet
                    if r.get("outcome") != "rejected" and not not_started:
                        break
                    time.sleep(2)
                breach = next((f for f in r.get("findings") or [] if f["kind"] == "breach"), None)
                if breach and "abort_s" in breach["data"]:
                    abort_s.append(breach["data"]["abort_s"])
                if progress:
                    progress(f"abort run {i + 1}/{aborts}: {breach['text'] if breach else r.get('outcome')}")
            out["experiment_abort_s"] = {"runs": aborts, "measured": len(abort_s),
                                         "median": round(statistics.median(abort_s), 3) if abort_s else None,
                                         "max": round(max(abort_s), 3) if abort_s else None, "all": abort_s}
    finally:
        lifecycle.down(config)
    return out


def _swallow(daemon: DaemonProcess, proposal: dict[str, Any]) -> None:
    with contextlib.suppress(Exception):  # the daemon is killed under this request on purpose
        daemon.post("/v1/chaos/run", json={"proposal": proposal}, timeout=120)


def run_chaos_bench(*, proposals: int = 10_000, kills: int = 20, aborts: int = 3, seed: int = 7,
                    live: bool = True, progress: Any = None) -> dict[str, Any]:
    out = preflight_bench(proposals, seed)
    out["targets"] = {"preflight_violations": 0, "leftover_faults_after_kill": 0, "experiment_abort_s": 2.0}
    if live:
        out.update(live_bench(kills, aborts, progress))
        ab = out["experiment_abort_s"]
        out["misses"] = [k for k, bad in (("preflight_violations", out["preflight_violations"] > 0),
                                          ("leftover_faults_after_kill", out["leftover_faults_after_kill"] > 0),
                                          ("kills_done", out["kills"] < kills),
                                          ("experiment_abort_s", ab["max"] is None or ab["max"] > 2.0),
                                          ("experiment_abort_measured", ab["measured"] < ab["runs"])) if bad]
    return out
