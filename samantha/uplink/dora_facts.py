"""The DORA facts a hub needs, queued once each when they become final.

A rollout fact (bundle, its `created_at`, started, ended, outcome) is final when the rollout
ends; a recovery fact (onset -> mitigated) when its mitigation is verified or its incident
closes. They are re-derived from the daemon's own durable records (`dora.local_records`) on
every uplink tick rather than pushed by the controller: a crash between a rollout's last save
and the enqueue loses nothing, and the stable record key (`rollouts:<id>`,
`recoveries:<source>:<ref>`), committed in `outbox_sent` with the rows, stops a restart from
queueing one twice. The hub stores them as Parquet with the columns of `RolloutFact` /
`RecoveryFact` (the cube comes from its `cube=` partition), which `dora.fleet_dora` reads.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from samantha.reporting.dora import local_records
from samantha.uplink.outbox import Outbox

ROLLOUT_SCHEMA = pa.schema([("ts", pa.float64()), ("record_key", pa.string()), ("rollout_id", pa.string()),
                            ("bundle_id", pa.string()), ("bundle_label", pa.string()),
                            ("bundle_created_at", pa.float64()), ("started_at", pa.float64()),
                            ("ended_at", pa.float64()), ("phase", pa.string())])
RECOVERY_SCHEMA = pa.schema([("ts", pa.float64()), ("record_key", pa.string()), ("source", pa.string()),
                             ("ref", pa.string()), ("onset_ts", pa.float64()), ("mitigated_ts", pa.float64()),
                             ("kind", pa.string())])


def final_fact_tables(read: Any) -> tuple[pa.Table, pa.Table]:
    """(rollouts, recoveries) that can no longer change, one row each with its stable `record_key`."""
    rollouts, recoveries = local_records(read, final_only=True)
    ro = [{**r.model_dump(exclude={"cube"}), "ts": r.ended_at, "record_key": f"rollouts:{r.rollout_id}"}
          for r in rollouts if r.ended_at is not None]
    rc = [{**r.model_dump(exclude={"cube"}), "ts": r.mitigated_ts, "record_key": f"recoveries:{r.source}:{r.ref}"}
          for r in recoveries]
    return pa.Table.from_pylist(ro, schema=ROLLOUT_SCHEMA), pa.Table.from_pylist(rc, schema=RECOVERY_SCHEMA)


def queue_dora_facts(outbox: Outbox) -> dict[str, int]:
    """Queue every final fact not queued before. Returns the number queued per kind (0s left out)."""
    def read(sql: str, params: list[Any]) -> pa.Table:
        return outbox.conn.sql(sql, params=params or None).to_arrow_table()

    with outbox.lock:
        rollouts, recoveries = final_fact_tables(read)
        out = {"rollouts": outbox.append_once("rollouts", rollouts, "ts"),
               "recoveries": outbox.append_once("recoveries", recoveries, "ts")}
    return {k: v for k, v in out.items() if v}
