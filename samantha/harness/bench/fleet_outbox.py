"""The fleet bench's Cubes: one week of outbox made once by the offline bench's generator, cloned per Cube.

Generating a week of telemetry and SRE-loop output costs about a minute per Cube; 200 Cubes would spend
the whole bench there. So one Cube's outbox is made once (`build_template`: the offline bench's
rollup minutes, gauges and hourly SRE loop on a SimClock, the real `UplinkService` collecting into the
real outbox, no hub), every batch is frozen (offered once, so its payload is final), and the outbox
tables alone are copied into a small DuckDB file. `SimCube` clones that file under its own cube id and
outbox epoch (batch ids `<epoch>-<seq>` are the stream's Nats-Msg-Id: equal ids across Cubes would
be dropped as duplicates) and uploads it with the product's `NatsLink`, as the daemon does.
"""

from __future__ import annotations

import re
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from samantha.core.clock import RealClock, SimClock
from samantha.core.config import AlertsConfig, SamanthaConfig, StoreConfig, UplinkConfig
from samantha.harness.bench.offline import START, gauges, open_offline_cube, rollup_minutes, sre_hour
from samantha.uplink.nats_link import NatsLink
from samantha.uplink.outbox import Outbox, from_parquet

TEMPLATE = "outbox-template.duckdb"
EXPECTED = "expected-keys.parquet"  # (kind, record_key) of one Cube's outbox: what each Cube must deliver


def build_template(root: Path, *, days: float, rps: float = 200.0, series: int = 10, step_s: float = 1800.0,
                   seed: int = 7, progress: Callable[[float, float], None] | None = None) -> dict[str, Any]:
    """A week (or `days`) offline for one Cube; writes TEMPLATE and EXPECTED under root; returns its summary."""

    t_wall = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    clock = SimClock(START)
    cfg = SamanthaConfig(data_dir=str(root / "template-cube"), store=StoreConfig(max_past_age_s=30 * 86400,
                                                                               series_budget=max(1000, series)),
                         alerts=AlertsConfig(), uplink=UplinkConfig(cube_id="template"))  # no hub: offline
    cube = open_offline_cube(cfg, clock)
    store, audit, alerts, svc, incidents, ledger = (cube.store, cube.audit, cube.alerts, cube.svc, cube.incidents,
                                                    cube.ledger)
    try:
        steps = max(1, int(days * 86400 // step_s))
        next_hour = START + 3600
        for i in range(steps):
            t0 = START + i * step_s
            clock.advance(t0 + step_s - clock.time())
            rollup_minutes(store, rng, t0, step_s, rps)
            gauges(store, rng, t0, step_s, series)
            while next_hour <= clock.time():
                sre_hour(incidents, ledger, audit, alerts, svc, next_hour, int((next_hour - START) // 3600))
                next_hour += 3600
            svc.tick()
            if i % 12 == 11:  # every 6 simulated hours: the store stays in budget; the outbox is protected
                store.retention.run()
            if progress is not None:
                progress(i + 1, steps)
        clock.advance(120.0)  # past the collector's settle time: the last minutes are queued too
        svc.tick()
        ob = svc.outbox
        for b in ob.pending(limit=10**7):
            ob.offer(b["seq"])  # frozen: every clone sends these exact bytes
        rows = ob.conn.execute("SELECT kind, payload FROM outbox WHERE acked_at IS NULL ORDER BY seq").fetchall()
        keys: dict[str, list[str]] = {"kind": [], "record_key": []}
        for kind, payload in rows:
            got = from_parquet(bytes(payload)).column("record_key").to_pylist()
            keys["kind"] += [kind] * len(got)
            keys["record_key"] += got
        pq.write_table(pa.table(keys), root / EXPECTED)
        tpl = root / TEMPLATE
        tpl.unlink(missing_ok=True)
        ob.conn.execute(f"ATTACH '{tpl}' AS tpl")
        try:
            ob.conn.execute("CREATE TABLE tpl.outbox AS SELECT * FROM outbox WHERE acked_at IS NULL")
            ob.conn.execute("CREATE TABLE tpl.outbox_state AS SELECT * FROM outbox_state")
        finally:
            ob.conn.execute("DETACH tpl")
        st = ob.stats()
        summary = {"generated_days": days, "rps": rps, "gauge_series": series,
                   "batches": st["pending_batches"], "records": st["pending_records"], "bytes": st["pending_bytes"],
                   "records_by_kind": {k: v["records"] for k, v in st["pending_by_kind"].items()},
                   "downsampled_batches": st["downsampled_batches"], "gap_records": st["gap_records"],
                   "distinct_keys": len(set(zip(keys["kind"], keys["record_key"], strict=True))),
                   "generation_wall_s": round(time.perf_counter() - t_wall, 1)}
    finally:
        cube.close()
    shutil.rmtree(root / "template-cube", ignore_errors=True)  # the telemetry itself is not needed any more
    return summary


class SimCube:
    """One Cube: a clone of the template outbox under its own id and epoch, uploaded by the product's NatsLink."""

    def __init__(self, template: Path, path: Path, cube_id: str, servers: list[str], *, region: str,
                 timeout_s: float = 5.0) -> None:
        self.cube_id = cube_id
        shutil.copyfile(template, path)
        self.conn = duckdb.connect(str(path), config={"threads": 1, "memory_limit": "128MB"})
        epoch = secrets.token_hex(6)
        self.conn.execute("UPDATE outbox SET batch_id = ? || '-' || lpad(CAST(seq AS VARCHAR), 10, '0')", [epoch])
        self.conn.execute("UPDATE outbox_state SET value = ? WHERE key = 'epoch'", [epoch])
        clock = RealClock()
        self.outbox = Outbox(self.conn, clock, budget_bytes=1 << 40)
        # nothing is published downward in the bench: the policy and decision callbacks are never called
        self.link = NatsLink(self.outbox, servers, cube_id, clock, region=region, channel="fleet",
                             on_policy=_refuse, on_operator_doc=_refuse, timeout_s=timeout_s)

    def catch_up(self, deadline: float, *, round_s: float = 20.0, max_rounds: int = 5000) -> dict[str, Any]:
        """Rounds of the link until the outbox is empty, bounded by `max_rounds` and the monotonic `deadline`;
        a failed round (the leaf cut off, a root node gone) backs off 0.2 s doubling to 3 s."""
        rounds, errors, backoff, last = 0, 0, 0.2, ""
        kinds: dict[str, int] = {}
        while rounds < max_rounds and time.monotonic() < deadline:
            rounds += 1
            s = self.link.run(min(round_s, max(1.0, deadline - time.monotonic())))["sync"]
            if s.get("ok") and s.get("remaining") == 0:
                return {"done": True, "rounds": rounds, "failed_rounds": errors, "error_kinds": kinds,
                        "at": time.monotonic()}
            if not s.get("ok"):
                errors, last = errors + 1, str(s.get("error"))[:200]
                kind = error_kind(last)
                kinds[kind] = kinds.get(kind, 0) + 1
                time.sleep(backoff)
                backoff = min(3.0, backoff * 2)
            else:
                backoff = 0.2
        return {"done": False, "rounds": rounds, "failed_rounds": errors, "error_kinds": kinds, "last_error": last,
                "remaining": self.outbox.stats()["pending_batches"], "at": time.monotonic()}

    def close(self) -> None:
        self.link.close()  # also closes its loop (200 Cubes would leak 600 fds otherwise)
        self.conn.close()


def error_kind(error: str) -> str:
    """The exception's name in a round's error ("batch <id>: TimeoutError: ..." -> "TimeoutError")."""
    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*(?:Error|Exception|Timeout))\b", error)
    return m.group(1) if m else error[:40]


def _refuse(doc: Any, metadata: Any = None) -> Any:
    raise RuntimeError("the fleet bench publishes no policy module or decision")
