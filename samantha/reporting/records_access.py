"""Reading the daemon's records from outside it: through its API while it runs, else read-only.

DuckDB allows one read-write process; the daemon holds it. `open_reader` opens the store
read-only when nobody holds it and says `None` when the daemon does (callers then ask the API).
Also: `parse_when()` for `--since/--until` ("24h", "7d", "90m", ISO-8601, or epoch seconds).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

_REL = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(text: str, now: float | None = None) -> float:
    """Epoch seconds for "24h" (ago), "7d", ISO-8601 (UTC unless it says otherwise) or a number."""
    now = time.time() if now is None else now
    t = text.strip()
    m = _REL.match(t)
    if m:
        return now - float(m.group(1)) * _UNIT[m.group(2)]
    with contextlib.suppress(ValueError):
        v = float(t)
        if v > 1e8:
            return v
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration ago (30m, 24h, 7d), an ISO-8601 time or epoch seconds") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


class LockedByDaemon(Exception):
    pass


@contextlib.contextmanager
def open_reader(path: Path) -> Iterator[Any]:
    """A `read(sql, params) -> Arrow` over the file, read-only. LockedByDaemon when the daemon holds it."""
    try:
        conn = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as e:
        if "lock" in str(e).lower():
            raise LockedByDaemon(str(e)) from None
        raise
    try:
        yield lambda sql, params=None: conn.sql(sql, params=params or None).to_arrow_table()
    finally:
        conn.close()


def table_exists(read: Any, name: str) -> bool:
    t = read("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name])
    return bool(t.column(0)[0].as_py())
