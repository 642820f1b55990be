"""Shared by the fleet tests: a Cube's outbox of findings batches and the product's NatsLink on it."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from samantha.core.clock import RealClock
from samantha.uplink.nats_link import NatsLink
from samantha.uplink.outbox import Outbox

SPAN = 3600.0
T0 = 1_800_000_000.0


def _refuse(_doc: object) -> object:
    raise AssertionError("nothing is published downward in this test")


def findings_link(tmp: Path, url: str, cube: str, n: int, *, pad: int = 3000,
                  timeout_s: float = 3.0) -> tuple[NatsLink, Outbox, duckdb.DuckDBPyConnection]:
    """An outbox with `n` findings batches (one per hour window, `pad` random bytes, hex, in each record)."""
    conn = duckdb.connect(str(tmp / f"{cube}.duckdb"))
    ob = Outbox(conn, RealClock(), budget_bytes=1 << 30, batch_span_s=SPAN)
    for i in range(n):
        add_finding(ob, i, pad=pad)
    link = NatsLink(ob, [url], cube, RealClock(), region="eu", channel="fleet", on_policy=_refuse,
                    on_operator_doc=_refuse, timeout_s=timeout_s)
    return link, ob, conn


def add_finding(ob: Outbox, i: int, *, pad: int = 0) -> None:
    """Finding `f<i>`, alone in its hour window, so alone in its batch."""
    ob.append_records("findings", [{"ts": T0 + i * SPAN, "id": f"f{i}", "pad": os.urandom(pad).hex()}])
