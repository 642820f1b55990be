"""Scenario runs with Samantha measured: a fresh daemon beside a fresh twin, or an attached pair.

The twin's half (the scenario document, applying its timeline to a twin) is `samantha.twin.scenario`;
this is the harness's half. `run_scenario` is self-contained by default: a fresh twin and a fresh
`samantha run` daemon (shipped playbooks, defaults) in a temporary directory, torn down at the end,
so runs are independent and repeatable. It returns one JSON object: the faults with their onset,
detection and mitigation times, the actions Samantha took, the false actions, the daemon's footprint
and a traffic summary by role.

Measurement (`samantha.harness.measure.measure`) reads the daemon's records, never its API replies:
- a daemon this module started: stopped first (SIGTERM, waited; it commits and closes its store), then
  its DuckDB file is opened read-only (`measure_stopped`);
- a daemon it must not stop (`attach`, the demo, tests that go on with it): the daemon's admin export,
  `GET /v1/export/{table}` (Parquet of a time window), loaded into an in-memory DuckDB
  (`measure_live`). Its `by_role` covers the exported window (the run), not the daemon's whole life.
Scoring lives here, in the harness: the product API serves records, not scores.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow.parquet as pq

from samantha.core.config import SamanthaConfig
from samantha.harness.measure import measure
from samantha.reporting.records_access import open_reader
from samantha.twin import lifecycle
from samantha.twin.scenario import Driven, Scenario, StartRollout, drive, ephemeral_config, twin_report

# what measure() reads, and from how long before t0: a rollout started up to an hour before the run may
# give a failing verdict inside it; everything else measure() reads is from t0 on
MEASURED_TABLES: dict[str, float] = {"requests": 0.0, "actions": 0.0, "incidents": 0.0, "rollouts": 3600.0}


class _Reader:
    """measure()'s Reader over a `read(sql, params) -> Arrow` callable."""

    def __init__(self, read: Callable[..., Any]) -> None:
        self.read_arrow = read


def measure_stopped(store_path: Path, faults: list[dict[str, Any]], t0: float, duration_s: float,
                    end: float) -> dict[str, Any]:
    """Measure from a stopped daemon's DuckDB file, opened read-only."""
    with open_reader(store_path) as read:
        return measure(_Reader(read), faults, t0, duration_s, end)


def export_window(url: str, headers: dict[str, str], since: float, until: float,
                  tables: dict[str, float] = MEASURED_TABLES) -> duckdb.DuckDBPyConnection:
    """A running daemon's tables over [since - lookback, until) (its admin Parquet export; `tables` maps each
    to its lookback, seconds) in an in-memory DuckDB. A table the daemon does not keep (404 unknown_table)
    is left out, as measure() expects."""
    con = duckdb.connect()
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        for table, lookback in tables.items():
            r = http.get(f"/v1/export/{table}", params={"since": since - lookback, "until": until})
            if r.status_code == 404 and (r.json().get("error") or {}).get("code") == "unknown_table":
                continue
            if r.status_code >= 400:
                raise RuntimeError(f"the daemon could not export {table}: {r.text[:500]}")
            con.register("exported", pq.read_table(io.BytesIO(r.content)))
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM exported")
            con.unregister("exported")
    return con


def measure_live(url: str, headers: dict[str, str], faults: list[dict[str, Any]], t0: float, duration_s: float,
                 end: float) -> dict[str, Any]:
    """Measure a daemon that keeps running, from its records exported over the run's window: from t0 (a rollout
    from an hour before) to `end` or now, whichever is later. For a run that has just ended that is the same
    as measure_stopped on the daemon's file, less traffic from before t0 in `by_role`."""
    con = export_window(url, headers, t0, max(end, time.time()) + 1)
    try:
        return measure(_Reader(lambda sql, params=None: con.sql(sql, params=params or None).to_arrow_table()),
                       faults, t0, duration_s, end)
    finally:
        con.close()


def rollout_starter(url: str, headers: dict[str, str]) -> StartRollout:
    """The twin runner's `start_rollout`: POST /v1/rollout/start on the daemon."""

    def start(bundle: str, request_id: str) -> None:
        r = httpx.post(f"{url}/v1/rollout/start", json={"bundle": bundle, "request_id": request_id},
                       headers=headers, timeout=10)
        if r.status_code >= 400:
            raise RuntimeError(f"rollout start refused: {r.text[:300]}")

    return start


@contextlib.contextmanager
def telemetry_server(data_dir: Path) -> Iterator[tuple[str, SamanthaConfig]]:
    """`samantha telemetry serve` on a fresh store; yields the ingest URL and the store's config."""
    from samantha.core.ports import free_port
    from samantha.harness.child_process import stop_group, wait_healthy

    data_dir.mkdir(parents=True, exist_ok=True)
    cfg_file = data_dir / "samantha.yaml"
    cfg_file.write_text(f"data_dir: {data_dir}\n")
    port = free_port()
    log = open(data_dir / "telemetry-serve.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen([sys.executable, "-m", "samantha", "telemetry", "serve", "--port", str(port),
                             "--config", str(cfg_file)], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=os.environ.copy(), start_new_session=True)
    log.close()
    try:
        wait_healthy(proc, f"http://127.0.0.1:{port}/healthz", 30, fail=RuntimeError, what="telemetry serve",
                     tail=lambda: (data_dir / "telemetry-serve.log").read_text()[-500:])
        yield f"http://127.0.0.1:{port}/v1/ingest/requests", SamanthaConfig(data_dir=str(data_dir))
    finally:
        stop_group(proc, 20)


def traffic_from_store(store_cfg: SamanthaConfig) -> dict[str, Any]:
    """Traffic by role from a stopped store's file, read-only."""
    from samantha.harness.measure import traffic_by_role

    with open_reader(store_cfg.store_path) as read:
        return traffic_by_role(_Reader(read))


def _with_samantha(scenario: Scenario, tmp: Path, speed: float, progress: Callable[[float, str], None] | None,
                   policy: Any = None, llm: bool = False, cube: str = "twin") -> tuple[Driven, dict[str, Any]]:
    """A fresh Cube (`cube`: the twin, or real Triton servers) with a fresh `samantha run` daemon beside it
    (shipped playbooks, defaults).

    After the timeline the daemon's footprint (RSS, USS, CPU share over the timeline) is taken, the
    daemon is stopped, and the run is measured from its DuckDB file, read-only."""
    import yaml

    from samantha.core.ports import free_port
    from samantha.harness.daemon_process import DaemonProcess, write_config

    port = free_port()
    cfg = ephemeral_config(tmp / "state", f"http://127.0.0.1:{port}/v1/ingest/requests", 0)
    update: dict[str, Any] = {"api": cfg.api.model_copy(update={"port": port}),
                              "llm": cfg.llm.model_copy(update={"enabled": llm})}
    if policy is not None:
        (tmp / "rollout-policy.yaml").write_text(yaml.safe_dump(policy.model_dump(mode="json")))
        update["sre"] = cfg.sre.model_copy(update={"rollout_policy": str(tmp / "rollout-policy.yaml")})
    cfg = cfg.model_copy(update=update)
    # the Cube first: the daemon finds it (the twin's state file, or sre.cube_url in the config _cube returns)
    with (_cube(cube, cfg, tmp) as (st, cfg),
          DaemonProcess(cfg, write_config(cfg, tmp / "samantha.yaml"), log=tmp / "daemon.log") as daemon):
        daemon.start().wait_ready(90, verdicts=True)
        daemon.cpu_mark()
        d = drive(scenario, st, speed=speed, progress=progress,
                  start_rollout=rollout_starter(daemon.url, daemon.client.headers()))
        foot = daemon.footprint()
        code = daemon.stop()  # the one writer goes (SIGTERM, waited): its file is ours to read
        measured = measure_stopped(cfg.store_path, d.runner.faults, d.runner.t0_wall, scenario.duration_s,
                                   d.end_wall)
        measured["daemon"] = {**foot, "rps": scenario.traffic.rps, "pid": daemon.pid, "exit_code": code}
    return d, measured


@contextlib.contextmanager
def _cube(cube: str, cfg: SamanthaConfig, tmp: Path) -> Iterator[tuple[dict[str, Any], SamanthaConfig]]:
    """The Cube a fresh daemon governs: the twin (found through its state file), or a real Triton Cube whose
    router pushes to the same ingest with the same writer credential (the daemon reaches it by `sre.cube_url`).
    Yields the twin-shaped state the Runner drives and the daemon's config."""
    if cube == "twin":
        st = lifecycle.up(cfg)
        try:
            yield st, cfg
        finally:
            lifecycle.down(cfg)
        return
    from samantha.core.writer_tokens import ensure_token_file
    from samantha.harness.triton_cube import TritonCube

    token = cfg.resolve(cfg.twin.ingest_token_file or "writers/router.token")
    ensure_token_file(token)
    tc = TritonCube(tmp / "cube", ingest_url=cfg.twin.ingest_url or "", ingest_token_file=str(token))
    try:
        tc.start()
        st = tc.for_scenarios()
        # the daemon's bundle intake reads the Cube's bundle store and trusts its publisher, as the twin's does
        twin = cfg.twin.model_copy(update={"bundles_dir": str(tc.root), "trusted_keys": str(tc.root / "trusted")})
        yield st, cfg.model_copy(update={"sre": cfg.sre.model_copy(update={"cube_url": tc.control_url}), "twin": twin})
    finally:
        tc.stop()


def run_scenario(scenario: Scenario, *, speed: float = 1.0, attach: SamanthaConfig | None = None,
                 progress: Callable[[float, str], None] | None = None, samantha: bool = True,
                 policy: Any = None, llm: bool = False, cube: str = "twin") -> dict[str, Any]:
    """`samantha=True` (default): a fresh `samantha run` daemon runs beside the fresh twin and the report
    carries detection, mitigation and actions; False: the twin alone (onsets only). `attach`: the
    running twin and daemon of that config (measured through its export; nothing is stopped or torn
    down). `llm`: the fresh daemon triages incidents with the local LLM (off the fast path); off, the
    rules triage. `cube="triton"`: the fresh Cube is two real tritonservers behind the Cube runtime (with
    `samantha=True` only; `cube_blockers` says which scenarios apply)."""
    started = time.time()
    by_role = None
    measured: dict[str, Any] | None = None
    if attach is not None:
        from samantha.api.client import auth_headers, daemon_url

        st = lifecycle.read_state(attach)
        if not st or not st.get("ready"):
            raise RuntimeError("--attach: no running twin for this config (run `samantha twin up`)")
        url = daemon_url(attach)
        try:
            httpx.get(f"{url}/healthz", timeout=2).raise_for_status()
        except httpx.HTTPError as e:
            raise RuntimeError(f"--attach: no daemon answers at {url} (run `samantha run`): {e}") from None
        headers = auth_headers(attach)
        d = drive(scenario, st, speed=speed, progress=progress, start_rollout=rollout_starter(url, headers))
        measured = measure_live(url, headers, d.runner.faults, d.runner.t0_wall, scenario.duration_s, d.end_wall)
    elif samantha:
        with tempfile.TemporaryDirectory(prefix=f"scenario-{scenario.name}-") as tmp:
            d, measured = _with_samantha(scenario, Path(tmp), speed, progress, policy, llm, cube)
    else:
        with tempfile.TemporaryDirectory(prefix=f"scenario-{scenario.name}-") as tmp:
            with telemetry_server(Path(tmp) / "store") as (url, store_cfg):
                cfg = ephemeral_config(Path(tmp) / "twin", url, 0)
                st = lifecycle.up(cfg)
                try:
                    d = drive(scenario, st, speed=speed, progress=progress)
                finally:
                    lifecycle.down(cfg)
            by_role = traffic_from_store(store_cfg)  # the server has stopped: the store is ours to read
    out: dict[str, Any] = {"name": scenario.name, "duration_s": scenario.duration_s, "speed": speed,
                           "wall_s": round(time.time() - started, 2), "self_contained": attach is None, "cube": cube,
                           **twin_report(scenario, d)}
    if measured is not None:
        by_role = measured["by_role"]
        out.update(faults=measured["faults"], actions=measured["actions"], false_actions=measured["false_actions"],
                   false_action_list=measured["false_action_list"],
                   false_incidents=measured.get("false_incidents", 0),
                   false_incident_list=measured.get("false_incident_list", []))
        if "daemon" in measured:
            out["daemon"] = measured["daemon"]
    if by_role is not None:
        out["traffic"]["by_role"] = by_role
    return out
