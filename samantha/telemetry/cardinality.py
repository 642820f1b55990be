"""Series ids and the cardinality guard.

Each metric may own at most `series_budget` distinct label sets. Past that, new label sets
fold into one `__overflow__` series per metric; the fold is counted, and the first fold of
a metric is reported once so the store can emit an event. Metric names themselves are
bounded by `metric_budget` (past it, samples fold into the `__overflow__` metric). Memory
therefore stays O(metric_budget * series_budget) whatever is thrown at it: a folded label
set is never remembered.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from samantha.telemetry.validation import labels_key

OVERFLOW = "__overflow__"
OVERFLOW_LABELS = {OVERFLOW: "true"}
OVERFLOW_KEY = labels_key(OVERFLOW_LABELS)


@dataclass(frozen=True)
class NewSeries:
    id: int
    metric: str
    labels_key: str
    labels_json: str


class SeriesRegistry:
    def __init__(self, series_budget: int, metric_budget: int, next_id: int = 1) -> None:
        self.series_budget = series_budget
        self.metric_budget = metric_budget
        self._ids: dict[str, dict[str, int]] = {}
        self._overflow: dict[str, int] = {}
        self._next_id = next_id
        self._lock = threading.Lock()
        self._pending: list[NewSeries] = []
        self.folds = 0
        self.folds_by_metric: dict[str, int] = {}
        self._first_folds: list[str] = []

    def load(self, rows: Iterable[tuple[int, str, str]]) -> None:
        """Known series from the database (id, metric, labels_key)."""
        with self._lock:
            for sid, metric, key in rows:
                if key == OVERFLOW_KEY:
                    self._overflow[metric] = sid
                else:
                    self._ids.setdefault(metric, {})[key] = sid
                self._next_id = max(self._next_id, sid + 1)

    def resolve(self, metric: str, labels: Mapping[str, str]) -> int:
        """The series id for (metric, labels), folding past the budgets."""
        key = labels_key(labels)
        with self._lock:
            per = self._ids.get(metric)
            if per is not None:
                sid = per.get(key)
                if sid is not None:
                    return sid
                if len(per) < self.series_budget:
                    return self._new(per, metric, key, labels)
                return self._fold(metric)
            if len(self._ids) < self.metric_budget:
                per = self._ids[metric] = {}
                return self._new(per, metric, key, labels)
            return self._fold(OVERFLOW)

    def _new(self, per: dict[str, int], metric: str, key: str, labels: Mapping[str, str]) -> int:
        sid = self._next_id
        self._next_id += 1
        per[key] = sid
        self._pending.append(NewSeries(sid, metric, key, json.dumps(dict(labels), sort_keys=True)))
        return sid

    def _fold(self, metric: str) -> int:
        self.folds += 1
        n = self.folds_by_metric.get(metric, 0)
        if n == 0:
            self._first_folds.append(metric)
        self.folds_by_metric[metric] = n + 1
        sid = self._overflow.get(metric)
        if sid is None:
            sid = self._overflow[metric] = self._next_id
            self._next_id += 1
            self._pending.append(NewSeries(sid, metric, OVERFLOW_KEY, json.dumps(OVERFLOW_LABELS)))
        return sid

    @property
    def high_water(self) -> int:
        """Grows whenever a series is created: a reader that saw the same value knows no series is new."""
        return self._next_id

    def has_pending(self) -> bool:
        return bool(self._pending)

    def take_pending(self) -> tuple[list[NewSeries], list[str]]:
        """New series rows to insert, and metrics that folded for the first time."""
        with self._lock:
            pending, self._pending = self._pending, []
            first, self._first_folds = self._first_folds, []
            return pending, first

    def requeue(self, pending: list[NewSeries]) -> None:
        with self._lock:
            self._pending[:0] = pending

    def size(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._ids.values()) + len(self._overflow)
