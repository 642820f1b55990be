"""SRE test kit: a real twin and a real daemon process (DaemonProcess) on ephemeral ports, always torn down."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from samantha.core.config import SamanthaConfig
from samantha.harness.daemon_process import DaemonProcess, write_config
from tests.conftest import free_port
from tests.twin.twinkit import EPHEMERAL, Twin, start_twin

PLAYBOOKS = Path(__file__).parent / "playbooks"


def sre_config(tmp_path: Path, *, rps: float = 200, playbooks: Path | None = PLAYBOOKS, **sections: Any) -> SamanthaConfig:
    port = free_port()
    doc: dict[str, Any] = {
        "data_dir": str(tmp_path / "state"),
        "api": {"port": port},
        "twin": {**EPHEMERAL, "rps": rps, "ingest_url": f"http://127.0.0.1:{port}/v1/ingest/requests"},
        "host_collector": {"interval_s": 1.0},
        "sre": {"playbook_dirs": [str(playbooks)] if playbooks else None, "verify_timeout_s": 6.0},
        "llm": {"enabled": False},  # rule triage unless a test turns the local LLM on
    }
    for name, values in sections.items():
        doc[name] = {**doc.get(name, {}), **values}
    return SamanthaConfig.model_validate(doc)


def wait_for(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # the condition may not be computable yet (daemon starting)
            last_exc = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last_exc})"
                                                                                  if last_exc else ""))


@contextlib.contextmanager
def twin_and_daemon(tmp_path: Path, env: dict[str, str] | None = None, **kw: Any) -> Iterator[tuple[Twin, DaemonProcess]]:
    config = sre_config(tmp_path, **kw)
    path = write_config(config, tmp_path / "samantha.yaml")
    with contextlib.contextmanager(start_twin)(config) as twin:
        daemon = DaemonProcess(config, path, env=env)
        try:
            yield twin, daemon.start().wait_ready()
        finally:
            daemon.close()


def load_and_flip(twin: Twin, name: str, tag: str, **profile: Any) -> None:
    """Put a bundle with `profile` on the active slot: load it into the standby, then flip (as an operator would)."""
    twin.bundle(name, seed=3, **profile)
    twin.cube.load(name, request_id=f"test-load-{tag}")
    wait_for(lambda: all(s.healthy for s in twin.cube.state().slots), 20, "slots healthy after load")
    twin.cube.flip(request_id=f"test-flip-{tag}")


def flips(daemon: DaemonProcess) -> list[dict[str, Any]]:
    return daemon.client.actions(kind="flip")


def audit_records(con: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(kind, payload) of the decision log in a DuckDB connection, in order; `where`: an SQL condition."""
    sql = f"SELECT kind, payload FROM audit {f'WHERE {where} ' if where else ''}ORDER BY seq"
    return [(k, json.loads(p)) for k, p in con.execute(sql).fetchall()]


def stopped_audit(db_path: Path, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """`audit_records` from a stopped daemon's DuckDB file (read-only)."""
    import duckdb

    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return audit_records(con, where)
    finally:
        con.close()
