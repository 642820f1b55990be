"""Machine credentials for telemetry writers: who may push rows into the store, and how many.

Ingest (`/v1/ingest/{table}`, OTLP's `POST /v1/metrics`) is a machine path, not an operator action,
so it has its own credentials (`api.writers` in the daemon config): each writer (the router, a host
collector, OTLP senders) has a token of its own and a list of the tables it may write. The writer's
name is stored with every request and event row, and only the router's request rows judge slot
health (`samantha.telemetry.schema.JUDGED_WRITERS`): a sender that may write events cannot fake a
failing slot. An operator token, of any role, is refused here: a stolen viewer token must not be
able to flip a slot. Each writer has a row budget per window (the kernel's `WeightedWindowLimiter`):
one writer cannot drown the store.

Unauthenticated ingest is refused unless `api.open_ingest_on_loopback` is set, which `check_binding`
allows only on a loopback bind; its rows are stored as `anonymous` and judged (that is the risk).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from samantha.core.clock import REAL_CLOCK, Clock
from samantha.core.config import SamanthaConfig, WriterConfig, WriterTable
from samantha.core.operators import token_sha256
from samantha.core.writer_tokens import ensure_token_file
from samantha.kernel.ratelimit import WeightedWindowLimiter
from samantha.telemetry.schema import ANONYMOUS_WRITER

INGEST_PREFIX = "/v1/ingest/"
OTLP_PATH = "/v1/metrics"  # OTLP/HTTP metrics (#18); GET /metrics is the operators' Prometheus page
WRITER_TABLES: tuple[str, ...] = get_args(WriterTable)
ANONYMOUS_BUDGET = WriterConfig(tables=list(WRITER_TABLES))


@dataclass(frozen=True)
class Writer:
    name: str
    tables: tuple[str, ...]


def writer_table(path: str) -> str | None:
    """The ingest table a path writes (`otlp` for OTLP metrics), or None when it is not a writer path."""
    if path.startswith(INGEST_PREFIX):
        return path[len(INGEST_PREFIX):] or "?"
    if path.rstrip("/") == OTLP_PATH:
        return "otlp"
    return None


def token_path(config: SamanthaConfig, name: str) -> str:
    w = config.api.writers[name]
    return str(config.resolve(w.token_file or f"writers/{name}.token"))


class WriterAuth:
    """The configured writers' token digests and row budgets. Token files are created when absent."""

    def __init__(self, config: SamanthaConfig, clock: Clock = REAL_CLOCK, *, open_ingest: bool = False) -> None:
        self.open_ingest = open_ingest
        self._digests: list[tuple[str, Writer]] = []
        self._limits: dict[str, WeightedWindowLimiter] = {}
        for name, w in config.api.writers.items():
            digest = w.token_sha256 or token_sha256(ensure_token_file(Path(token_path(config, name))))
            self._digests.append((digest, Writer(name, tuple(w.tables))))
            self._limits[name] = WeightedWindowLimiter(w.max_rows, w.rate_window_s, clock)
        self._limits[ANONYMOUS_WRITER] = WeightedWindowLimiter(ANONYMOUS_BUDGET.max_rows,
                                                               ANONYMOUS_BUDGET.rate_window_s, clock)

    @property
    def names(self) -> list[str]:
        return [w.name for _, w in self._digests]

    def authenticate(self, token: str) -> Writer | None:
        digest = token_sha256(token)
        found = None
        for d, w in self._digests:  # every digest compared: the time does not say which writer matched
            if hmac.compare_digest(d, digest):
                found = w
        return found

    def admit(self, writer: str, table: str, rows: int) -> float:
        """0 when `rows` more from `writer` fit its budget; else seconds to wait (inf: the batch never fits)."""
        lim = self._limits.get(writer)
        return 0.0 if lim is None else lim.take(writer, rows)  # in-process writers are the daemon itself
