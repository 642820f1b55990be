"""Prometheus text-format scraper for a list of targets.

Parsing is prometheus_client's (`text_string_to_metric_families`); this module only splits
the exposition into metric-family blocks so one malformed block costs its own lines, not
the whole scrape. A block that fails is retried line by line (each with its # TYPE header)
to keep its good samples and name the bad lines. Every scrape also records
`samantha_scrape_up{target}` and `samantha_scrape_duration_seconds{target}`.

A target that names a Cube slot (`slot: A`, a Triton's metrics port) labels its samples `slot`, plus the
slot's `role` and `bundle` at scrape time from `slot_roles` (the composition root passes the Cube state it
last saw), so gates can judge "the active slot's server" across flips. Counters are stored as the parser
yields them: under their OpenMetrics names (Triton's `nv_inference_count` is `nv_inference_count_total`).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from samantha.core.clock import REAL_CLOCK, Clock
from samantha.core.config import ScrapeTarget
from samantha.telemetry.store import TelemetryStore
from samantha.telemetry.validation import BAD_EXPOSITION, IngestResult, Reject

MAX_BODY_BYTES = 8 * 1024 * 1024
log = logging.getLogger(__name__)


@dataclass
class ParseResult:
    samples: list[dict[str, Any]] = field(default_factory=list)  # {metric, labels, ts, value}
    bad_lines: list[tuple[int, str]] = field(default_factory=list)  # (1-based line, reason)


def _blocks(text: str) -> list[list[tuple[int, str]]]:
    """Lines grouped by metric family: a new block starts at each # HELP / # TYPE header."""
    blocks: list[list[tuple[int, str]]] = []
    cur: list[tuple[int, str]] = []
    in_header = False
    for k, line in enumerate(text.splitlines(), start=1):
        is_header = line.startswith("# HELP ") or line.startswith("# TYPE ")
        if is_header and not in_header and cur:
            blocks.append(cur)
            cur = []
        in_header = is_header
        if line.strip():
            cur.append((k, line))
    if cur:
        blocks.append(cur)
    return blocks


def _families(lines: list[tuple[int, str]], ts: float, extra: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for fam in text_string_to_metric_families("\n".join(line for _, line in lines) + "\n"):
        for s in fam.samples:
            out.append({"metric": s.name, "labels": {**s.labels, **extra},
                        "ts": float(s.timestamp) if s.timestamp is not None else ts, "value": float(s.value)})
    return out


def parse_exposition(text: str, ts: float, extra_labels: dict[str, str] | None = None) -> ParseResult:
    """Samples from Prometheus text, stamped `ts` unless they carry their own timestamp."""
    extra = dict(extra_labels or {})
    res = ParseResult()
    for block in _blocks(text):
        try:
            res.samples += _families(block, ts, extra)
            continue
        except Exception:  # prometheus_client raises ValueError/IndexError/... on malformed text
            pass
        headers = [(k, line) for k, line in block if line.startswith("#")]
        for k, line in block:
            if line.startswith("#"):
                continue
            try:
                res.samples += _families([*headers, (k, line)], ts, extra)
            except Exception as e:
                res.bad_lines.append((k, f"{type(e).__name__}: {str(e)[:120]}"))
    return res


class PrometheusScraper:
    """Scrapes targets into the store; `scrape_once()` for one pass, `start()`/`stop()` for a loop."""

    def __init__(self, store: TelemetryStore, targets: list[ScrapeTarget], *, clock: Clock = REAL_CLOCK,
                 timeout_s: float = 2.0, interval_s: float = 15.0,
                 slot_roles: Callable[[], dict[str, dict[str, str]]] | None = None) -> None:
        """`slot_roles`: slot name -> {"role": ..., "bundle": ...} now; when it fails or does not know a slot,
        the slot's last known labels are used (an unknown role stays unlabelled: no gate reads it as a role)."""
        self.store, self.targets, self.clock = store, targets, clock
        self.slot_roles = slot_roles
        self._roles: dict[str, dict[str, str]] = {}
        self.timeout_s, self.interval_s = timeout_s, interval_s
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: dict[str, dict[str, Any]] = {}

    def _refresh_roles(self) -> None:
        if self.slot_roles is None:
            return
        try:
            got = self.slot_roles() or {}
        except Exception:  # the Cube's state unknown this pass: keep the last roles seen
            return
        for slot, labels in got.items():
            self._roles[slot] = {k: str(v) for k, v in labels.items() if k in ("role", "bundle") and v is not None}

    def _labels(self, target: ScrapeTarget) -> dict[str, str]:
        slot = {"slot": target.slot, **self._roles.get(target.slot, {})} if target.slot else {}
        return {"scrape_target": target.name, **target.labels, **slot}

    def scrape_target(self, target: ScrapeTarget, *, refresh_roles: bool = True) -> dict[str, Any]:
        if refresh_roles:
            self._refresh_roles()
        t0 = self.clock.monotonic()
        now = self.clock.time()
        info: dict[str, Any] = {"target": target.name, "up": 0, "accepted": 0, "rejected": [], "error": None}
        try:
            resp = self._client.get(target.url, headers={"Accept": "text/plain;version=0.0.4"})
            resp.raise_for_status()
            if len(resp.content) > MAX_BODY_BYTES:
                raise ValueError(f"exposition larger than {MAX_BODY_BYTES} bytes")
            parsed = parse_exposition(resp.text, now, self._labels(target))
            result = self.store.ingest_samples(parsed.samples)
            bad = [Reject(line, "", BAD_EXPOSITION, reason) for line, reason in parsed.bad_lines]
            self.store.count_rejects(bad)
            info.update(up=1, accepted=result.accepted,
                        rejected=[{"line": r.index, "reason": r.reason, "detail": r.detail} for r in bad]
                        + [{"sample": r.index, "field": r.field, "reason": r.reason} for r in result.rejected])
        except (httpx.HTTPError, ValueError, UnicodeDecodeError) as e:
            info["error"] = f"{type(e).__name__}: {str(e)[:200]}"
        duration = max(0.0, self.clock.monotonic() - t0)
        meta = {"target": target.name}
        self.store.ingest_samples([
            {"metric": "samantha_scrape_up", "labels": meta, "ts": now, "value": float(info["up"])},
            {"metric": "samantha_scrape_duration_seconds", "labels": meta, "ts": now,
             "value": duration if math.isfinite(duration) else 0.0}])
        self.last[target.name] = info
        return info

    def scrape_once(self) -> IngestResult:
        total = IngestResult()
        self._refresh_roles()  # once per pass: every target of the pass sees the same Cube state
        for t in self.targets:
            info = self.scrape_target(t, refresh_roles=False)
            total.accepted += info["accepted"]
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            started = self.clock.monotonic()
            try:
                self.scrape_once()
            except Exception:  # e.g. the store refusing a write: this pass is lost, the loop goes on
                log.exception("scrape pass failed")
            while not self._stop.is_set() and self.clock.monotonic() - started < self.interval_s:
                self.clock.sleep(min(0.1, self.interval_s))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="prometheus-scraper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s * max(1, len(self.targets)) + 5)
        self._client.close()
