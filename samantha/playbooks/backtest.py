"""Backtests: recorded telemetry replayed through the runner on a simulated clock, faster than real time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from samantha.core.clock import SimClock
from samantha.gates.engine import GateEngine
from samantha.gates.windows import TelemetryReader
from samantha.playbooks.model import Playbook
from samantha.playbooks.runner import Firing, PlaybookRunner, RunContext


class BacktestReport(BaseModel):
    recording: str
    start: float
    end: float
    step_s: float
    evaluations: int
    sim_seconds: float
    wall_seconds: float
    speedup: float
    firings: list[Firing] = Field(description="every action set that would have fired, with its evidence")
    suppressed: dict[str, int] = Field(description="per playbook: firings held back by cooldown / anti-flap")
    rollouts: list[dict[str, Any]]


def rollouts_in(reader: TelemetryReader) -> list[tuple[float, str]]:
    """(start, bundle) of every bundle seen on the standby slot: from rollout events when recorded,
    else the first standby request of each bundle."""
    ev = reader.read_arrow("SELECT ts, attrs FROM events WHERE kind IN ('rollout.start', 'deploy') ORDER BY ts")
    found = []
    for ts, attrs in zip(ev.column("ts").to_pylist(), ev.column("attrs").to_pylist(), strict=True):
        a = json.loads(attrs) if isinstance(attrs, str) else (attrs or {})
        if a.get("bundle"):
            found.append((float(ts), str(a["bundle"])))
    t = reader.read_arrow("SELECT bundle, min(ts) AS t FROM requests WHERE slot = 'standby' GROUP BY bundle ORDER BY t")
    seen = [(float(ts), b) for b, ts in zip(t.column("bundle").to_pylist(), t.column("t").to_pylist(), strict=True)]
    names = {b for _, b in seen}
    if found and all(b in names for _, b in found):  # events name bundles as the requests do
        return found
    return seen


def active_bundles(reader: TelemetryReader) -> list[tuple[float, str]]:
    t = reader.read_arrow("SELECT bundle, min(ts) AS t FROM requests WHERE slot = 'active' GROUP BY bundle ORDER BY t")
    return [(float(ts), b) for b, ts in zip(t.column("bundle").to_pylist(), t.column("t").to_pylist(), strict=True)]


def backtest(playbooks: Sequence[Playbook], reader: TelemetryReader, *, start: float, end: float,
             step_s: float = 1.0, clock: SimClock | None = None, name: str = "",
             progress: Callable[[float], None] | None = None) -> BacktestReport:
    """Evaluate every gate the playbooks need at each tick of a simulated clock over [start, end]."""
    import time

    clock = clock or SimClock(start)
    runner = PlaybookRunner(playbooks)
    engine = GateEngine(reader, clock)
    rollouts, actives = rollouts_in(reader), active_bundles(reader)
    firings: list[Firing] = []
    t0 = time.perf_counter()
    n = 0
    now = start
    while now <= end + 1e-9:
        if clock.time() < now:
            clock.advance(now - clock.time())
        started = [r for r in rollouts if r[0] <= now]
        rstart, canary_bundle = started[-1] if started else (None, None)
        act = [b for t, b in actives if t <= now]
        verdicts = engine.evaluate(runner.gates, now, rollout_start=rstart, canary_bundle=canary_bundle)
        firings += runner.step(verdicts, RunContext(now, None, act[-1] if act else None, canary_bundle))
        n += 1
        if progress:
            progress(now)
        now = start + n * step_s
    wall = time.perf_counter() - t0
    return BacktestReport(recording=name, start=start, end=end, step_s=step_s, evaluations=n,
                          sim_seconds=end - start, wall_seconds=wall,
                          speedup=(end - start) / wall if wall > 0 else 0.0,
                          firings=[f for f in firings if f.suppressed is None],
                          suppressed={p: sum(1 for f in firings if f.suppressed and f.playbook == p)
                                      for p in sorted({f.playbook for f in firings if f.suppressed})},
                          rollouts=[{"start": t, "bundle": b} for t, b in rollouts])
