"""A writer killed with SIGKILL mid-ingest: after reopening, everything it reported committed is there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from samantha.core.config import SamanthaConfig
from samantha.telemetry import TelemetryStore

CHILD = r"""
import sys, time
import numpy as np
from samantha.core.config import SamanthaConfig
from samantha.telemetry import SampleBatch, TelemetryStore

store = TelemetryStore.open(SamanthaConfig(data_dir=sys.argv[1]))
n, batch = 0, 5000
while True:
    now = time.time()
    store.ingest_samples(SampleBatch("crash_metric", {"k": str(n % 7)}, np.full(batch, now), np.arange(batch, dtype=float)))
    store.ingest_request_columns(np.full(100, now), "active", "v1", np.ones(100), np.ones(100, dtype=bool))
    store.flush()
    n += 1
    print(n * batch, n * 100, flush=True)
"""


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_sigkill_during_ingest_loses_nothing_committed(tmp_path) -> None:
    data = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(data)], env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reported = (0, 0)
    try:
        deadline = time.monotonic() + 60
        while reported[0] < 300_000:
            line = proc.stdout.readline()
            assert line, f"child died: {proc.stderr.read()}"
            reported = tuple(int(x) for x in line.split())
            assert time.monotonic() < deadline
        os.kill(proc.pid, signal.SIGKILL)  # mid-loop: the next batch is being ingested or committed
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    with TelemetryStore.open(SamanthaConfig(data_dir=str(data))) as s:
        samples = s.query_scalar("SELECT count(*) FROM samples")
        requests = s.query_scalar("SELECT count(*) FROM requests")
        series = s.query_scalar("SELECT count(*) FROM series")
        orphans = s.query_scalar("SELECT count(*) FROM samples WHERE series_id NOT IN (SELECT id FROM series)")
    assert samples >= reported[0] and requests >= reported[1]
    assert samples % 5000 == 0 and samples - reported[0] <= 5000  # at most the batch in flight, never half of one
    assert series == 7 and orphans == 0
