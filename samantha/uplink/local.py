"""The uplink without a daemon: the CLI (or a test) opens the DuckDB file itself as its one writer.

With a daemon running the file is locked and the CLI goes through the daemon's API instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from samantha.core.audit import AuditLog, DuckDBAuditStore
from samantha.core.clock import REAL_CLOCK, Clock
from samantha.core.config import SamanthaConfig
from samantha.core.signing import KeyPair
from samantha.telemetry.store import TelemetryStore
from samantha.uplink.alerts import AlertManager
from samantha.uplink.service import UplinkService


@contextlib.contextmanager
def local_service(config: SamanthaConfig, clock: Clock = REAL_CLOCK, **kw: object) -> Iterator[UplinkService]:
    Path(config.data_dir).mkdir(parents=True, exist_ok=True)
    store = TelemetryStore.open(config, clock, start_writer=False)
    conns = []
    svc = None
    try:
        key = KeyPair.load_or_create(config.cube_key_path)
        conns = [store.connection(), store.connection()]
        audit = AuditLog(DuckDBAuditStore(conns[0]), key, clock)
        alerts = AlertManager(conns[1], config.alerts, clock)
        svc = UplinkService(config, store, clock, key=key, alerts=alerts, audit=audit, **kw)  # type: ignore[arg-type]
        yield svc
    finally:
        if svc is not None:
            svc.close()
        for c in conns:
            c.close()
        store.close()
