"""Host collector (psutil): CPU, memory, disk, load, temperatures where exposed, and Samantha itself.

`collect()` reads the host once and returns sample dicts stamped with the injected clock;
`start()` runs it every `interval_s` on a thread until `stop()`.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from samantha.core.clock import REAL_CLOCK, Clock
from samantha.telemetry.store import TelemetryStore

_SENSOR_LABEL_CHARS = 60
_MIN_CPU_INTERVAL_S = 0.1


class HostCollector:
    def __init__(self, store: TelemetryStore, *, clock: Clock = REAL_CLOCK, interval_s: float = 1.0,
                 disk_path: str | Path = ".", host: str | None = None) -> None:
        self.store, self.clock, self.interval_s = store, clock, interval_s
        self.disk_path = str(disk_path)
        self.host = host or os.uname().nodename[:64] or "localhost"
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)  # primes the counters: the first real reading is a delta
        psutil.cpu_percent(None, percpu=True)
        self._cpu_primed_at = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.collections = 0
        self.last: dict[str, float] = {}

    def collect(self) -> list[dict[str, Any]]:
        now = self.clock.time()
        base = {"host": self.host}
        out: list[dict[str, Any]] = []

        def add(metric: str, value: float, **labels: str) -> None:
            out.append({"metric": metric, "labels": {**base, **labels}, "ts": now, "value": float(value)})

        # CPU percentages are deltas since the previous call: one over a few ms is noise, so skip it
        cpu_ready = time.monotonic() - self._cpu_primed_at >= _MIN_CPU_INTERVAL_S
        if cpu_ready:
            per_cpu = psutil.cpu_percent(None, percpu=True)
            add("host_cpu_percent", sum(per_cpu) / max(1, len(per_cpu)))
            for i, pct in enumerate(per_cpu):
                add("host_cpu_core_percent", pct, cpu=str(i))
        vm = psutil.virtual_memory()
        add("host_memory_total_bytes", vm.total)
        add("host_memory_available_bytes", vm.available)
        add("host_memory_used_percent", vm.percent)
        try:
            du = psutil.disk_usage(self.disk_path)
            add("host_disk_used_bytes", du.used, path=self.disk_path[-_SENSOR_LABEL_CHARS:])
            add("host_disk_free_bytes", du.free, path=self.disk_path[-_SENSOR_LABEL_CHARS:])
            add("host_disk_used_percent", du.percent, path=self.disk_path[-_SENSOR_LABEL_CHARS:])
        except OSError:
            pass  # the data dir may not exist yet
        try:
            for window, load in zip(("1m", "5m", "15m"), psutil.getloadavg(), strict=True):
                add("host_load", load, window=window)
        except OSError:
            pass
        for chip, entries in _temperatures().items():
            for j, t in enumerate(entries):
                if t.current is not None:
                    add("host_temperature_celsius", t.current, chip=chip[:_SENSOR_LABEL_CHARS],
                        sensor=(t.label or str(j))[:_SENSOR_LABEL_CHARS])
        with self._proc.oneshot():
            add("samantha_rss_bytes", self._proc.memory_info().rss)
            if cpu_ready:
                add("samantha_cpu_percent", self._proc.cpu_percent(None))
                self._cpu_primed_at = time.monotonic()
            add("samantha_threads", self._proc.num_threads())
        self.last = {}  # latest whole-host readings, for live views; per-core rows left out
        for s in out:
            if "cpu" not in s["labels"]:
                window = s["labels"].get("window")
                self.last[f"{s['metric']}[{window}]" if window else s["metric"]] = s["value"]
        return out

    def collect_once(self) -> int:
        """Collect and hand to the store; returns the number of samples accepted."""
        r = self.store.ingest_samples(self.collect())
        self.collections += 1
        return r.accepted

    def _run(self) -> None:
        while not self._stop.is_set():
            started = self.clock.monotonic()
            self.collect_once()
            while not self._stop.is_set() and self.clock.monotonic() - started < self.interval_s:
                self.clock.sleep(min(0.05, self.interval_s))

    def start(self) -> HostCollector:
        self._thread = threading.Thread(target=self._run, name="host-collector", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _temperatures() -> dict[str, list[Any]]:
    fn = getattr(psutil, "sensors_temperatures", None)  # absent on some platforms
    if fn is None:
        return {}
    try:
        return fn() or {}
    except (OSError, RuntimeError):
        return {}
