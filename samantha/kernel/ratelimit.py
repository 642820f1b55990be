"""Sliding-window rate limits: one pure counting rule, and a small clock-injected limiter.

The safety kernel counts past actions with `allows()` over its action history;
`SlidingWindowLimiter` keeps its own timestamps per key (e.g. API logins per
client); `WeightedWindowLimiter` counts weights (rows per telemetry writer). All use the same half-open window (now - window_s, now], so "at most
`limit` events in any window of `window_s` seconds" holds for either.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Iterable

from samantha.core.clock import Clock


def count_in_window(timestamps: Iterable[float], now: float, window_s: float) -> int:
    """Events in (now - window_s, now]. Future-dated events count too: a skewed clock must not free slots."""
    lo = now - window_s
    return sum(1 for t in timestamps if t > lo)


def allows(timestamps: Iterable[float], now: float, window_s: float, limit: int) -> bool:
    """Whether one more event at `now` keeps every window at or below `limit`."""
    return count_in_window(timestamps, now, window_s) < limit


def retry_after(timestamps: Iterable[float], now: float, window_s: float, limit: int) -> float:
    """Seconds until one more event would be allowed: 0 exactly when it is allowed now."""
    inside = sorted(t for t in timestamps if t > now - window_s)
    if len(inside) < limit:
        return 0.0
    # The oldest events must age out until only limit-1 remain; never 0 while refused (float rounding).
    return max(1e-9, inside[len(inside) - limit] + window_s - now)


def sum_in_window(events: Iterable[tuple[float, int]], now: float, window_s: float) -> int:
    """Total weight of (t, n) events in (now - window_s, now]; future-dated ones count, as above."""
    lo = now - window_s
    return sum(n for t, n in events if t > lo)


def allows_weighted(events: Iterable[tuple[float, int]], now: float, window_s: float, limit: int, n: int) -> bool:
    """Whether `n` more at `now` keeps every window's total at or below `limit` (all or nothing)."""
    return n <= limit and sum_in_window(events, now, window_s) + n <= limit


class WeightedWindowLimiter:
    """At most `limit` units (rows) per key in any `window_s` seconds, all or nothing per take. Thread-safe.

    Keys are a fixed, small set (configured writers), so memory is bounded by the events in one window.
    """

    def __init__(self, limit: int, window_s: float, clock: Clock) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.limit, self.window_s = limit, window_s
        self._clock = clock
        self._events: dict[str, deque[tuple[float, int]]] = {}
        self._lock = threading.Lock()

    def _window(self, key: str, now: float) -> deque[tuple[float, int]]:
        q = self._events.setdefault(key, deque())
        while q and q[0][0] <= now - self.window_s:
            q.popleft()
        return q

    def take(self, key: str, n: int) -> float:
        """Take `n` units: 0.0 when taken, else the seconds until they could be (inf: never, n > limit)."""
        if n > self.limit:
            return float("inf")
        with self._lock:
            now = self._clock.monotonic()
            q = self._window(key, now)
            if allows_weighted(q, now, self.window_s, self.limit, n):
                if n > 0:
                    q.append((now, n))
                return 0.0
            # the oldest events age out until n fits
            total, wait = sum(k for _, k in q), 0.0
            for t, k in q:
                total -= k
                wait = t + self.window_s - now
                if total + n <= self.limit:
                    break
            return max(1e-9, wait)


class SlidingWindowLimiter:
    """At most `limit` hits per key in any `window_s` seconds, on the clock's monotonic time. Thread-safe.

    Memory is bounded: at most `max_keys` keys are tracked; past that the least
    recently used key is forgotten (its client starts afresh, which errs toward
    availability for a login form, never toward more than `limit` for a live key).
    """

    def __init__(self, limit: int, window_s: float, clock: Clock, max_keys: int = 10_000) -> None:
        if limit < 1 or window_s <= 0 or max_keys < 1:
            raise ValueError("limit and max_keys must be >= 1 and window_s > 0")
        self.limit, self.window_s, self.max_keys = limit, window_s, max_keys
        self._clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _window(self, key: str, now: float) -> deque[float]:
        q = self._hits.get(key)
        if q is None:
            q = self._hits[key] = deque()
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
        self._hits.move_to_end(key)
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def check(self, key: str) -> bool:
        """Would a hit be allowed now? Records nothing."""
        with self._lock:
            now = self._clock.monotonic()
            return len(self._window(key, now)) < self.limit

    def hit(self, key: str) -> bool:
        """Record a hit if allowed; return whether it was."""
        with self._lock:
            now = self._clock.monotonic()
            q = self._window(key, now)
            if len(q) >= self.limit:
                return False
            q.append(now)
            return True

    def retry_after(self, key: str) -> float:
        with self._lock:
            now = self._clock.monotonic()
            return retry_after(self._window(key, now), now, self.window_s, self.limit)

    def reset(self, key: str) -> None:
        """Forget a key (e.g. after a successful login)."""
        with self._lock:
            self._hits.pop(key, None)
