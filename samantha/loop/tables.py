"""DDL of the SRE tables in the daemon's DuckDB file: `actions` (write-ahead), `incidents` and `known_good`.

None of these tables is touched by telemetry retention. Ids are unique by construction
(no key constraint: DuckDB updates on indexed tables are delete+insert, and these rows
are updated in place several times).
"""

from __future__ import annotations

from typing import Any, Protocol


class SqlStore(Protocol):
    """The two calls of TelemetryStore (the daemon's one writer) that the tables' owners write and read through."""

    def write_sql(self, sql: str, params: list[Any] | None = None) -> None: ...

    def read_arrow(self, sql: str, params: list[Any] | None = None) -> Any: ...


ACTION_STATUSES = ("intent", "done", "verified", "reverted", "failed")

KNOWN_GOOD_DDL = """CREATE TABLE IF NOT EXISTS known_good (
    bundle_id VARCHAR NOT NULL,         -- append-only; samantha/loop/known_good.py
    added_ts DOUBLE NOT NULL,
    source VARCHAR NOT NULL,            -- who vouched: loop (healthy active, no open incident) | rollout (promoted)
    reason VARCHAR NOT NULL
)"""

DDL = [
    """CREATE TABLE IF NOT EXISTS actions (
        id VARCHAR NOT NULL,            -- also the Cube request id: a retry is idempotent
        request_id VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        target VARCHAR NOT NULL,        -- what the policy keys limits on (bundle id, slot role or '-')
        reason VARCHAR NOT NULL,
        requested_by VARCHAR NOT NULL,
        playbook VARCHAR,
        playbook_version INTEGER,
        incident_id VARCHAR,
        proposed JSON NOT NULL,         -- the ProposedAction the policy allowed
        evidence JSON NOT NULL,         -- failing verdicts behind it
        before JSON NOT NULL,           -- Cube state at intent time, to reconcile after a crash
        result JSON,                    -- Cube answer, verification evidence, or why it failed
        status VARCHAR NOT NULL,        -- intent | done | verified | reverted | failed
        created_ts DOUBLE NOT NULL,
        done_ts DOUBLE,
        verified_ts DOUBLE,
        updated_ts DOUBLE NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS incidents (
        id VARCHAR NOT NULL,
        key VARCHAR NOT NULL,           -- grouping: scope and subject, e.g. active:<bundle id>
        title VARCHAR NOT NULL,
        severity VARCHAR NOT NULL,
        status VARCHAR NOT NULL,        -- open | closed
        opened_ts DOUBLE NOT NULL,
        updated_ts DOUBLE NOT NULL,
        last_fail_ts DOUBLE NOT NULL,
        closed_ts DOUBLE,
        playbooks JSON NOT NULL,        -- names that fired into it
        gates JSON NOT NULL,            -- names of the gates that failed
        evidence JSON NOT NULL,         -- latest failing verdict per gate
        actions JSON NOT NULL,          -- action ids
        refusals JSON NOT NULL,         -- policy refusals, with reasons
        summary VARCHAR,                -- triage (advisory, attached later)
        cause VARCHAR,
        triage JSON
    )""",
    KNOWN_GOOD_DDL,
]


def create(write_sql: Any) -> None:
    for stmt in DDL:
        write_sql(stmt)
