"""Act 1: host telemetry flowing into a fresh DuckDB file (filled in by the telemetry store work)."""

from __future__ import annotations

TITLE = "Host telemetry into DuckDB"


def run(ctx) -> None:
    ctx.console.print("host collector: not yet wired")
