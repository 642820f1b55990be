"""The daemon process: sd_notify READY/WATCHDOG/STOPPING over a real unix datagram socket, bad API
calls rejected with reasons (and the daemon keeps serving), the CLI through the API, a second
daemon refused by the store lock, and SIGTERM shutting down cleanly."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from samantha.api.client import auth_headers, writer_headers
from samantha.harness.daemon_process import DaemonProcess, write_config
from tests.conftest import free_port
from tests.sre.kit import sre_config, wait_for


def _recv_all(sock: socket.socket, until: str, timeout: float) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if any(until in m for m in got):
            break
    return got


def _cli(config_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "samantha", *args, "-c", str(config_path)], capture_output=True,
                          text=True, env=os.environ.copy(), timeout=60)


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_daemon_lifecycle_notify_api_errors_cli_and_sigterm(tmp_path: Path) -> None:
    # no Cube at all: the API, ingest and lifecycle must work regardless
    config = sre_config(tmp_path, sre={"cube_url": f"http://127.0.0.1:{free_port()}", "cube_timeout_s": 0.5})
    path = write_config(config, tmp_path / "samantha.yaml")
    assert _cli(path, "status").returncode == 1  # not running yet: a clear failure, exit 1
    assert "not running" in _cli(path, "status").stderr

    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    daemon = DaemonProcess(config, path, env={"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "400000"})
    try:
        daemon.start()
        msgs = _recv_all(sock, "READY=1", 60)
        assert any("READY=1" in m for m in msgs), (msgs, daemon.tail())
        daemon.wait_ready(5)  # READY means the API already answers
        more = _recv_all(sock, "WATCHDOG=1", 5)
        assert any("WATCHDOG=1" in m for m in more), more

        c = httpx.Client(base_url=daemon.url, timeout=10, headers=auth_headers(config))  # operator auth
        bad = [("GET", "/v1/incidents?limit=0", 422, "limit"), ("GET", "/v1/incidents?status=maybe", 422, "status"),
               ("GET", "/v1/actions?kind=reboot", 422, "kind"), ("GET", "/v1/actions/act%20xyz!", 422, "action_id"),
               ("GET", "/v1/incidents/inc-0000000000000000", 404, "incident_id"),
               ("GET", "/v1/actions/act-" + "0" * 24, 404, "action_id"), ("GET", "/v1/nope", 404, None),
               ("POST", "/v1/status", 405, None)]
        for method, url, code, field in bad:
            r = c.request(method, url)
            assert r.status_code == code, (url, r.text)
            err = r.json()["error"]
            assert err["reason"] and err["field"] == field, (url, err)
        line = json.dumps({"ts": time.time(), "slot": "sideways", "bundle": "b", "latency_ms": 1, "ok": True})
        r = c.post("/v1/ingest/requests", content=(line + "\nnot json\n").encode())
        assert r.status_code == 403, r.text  # an operator token (even the local admin's) cannot write telemetry
        w = writer_headers(config)
        r = c.post("/v1/ingest/requests", content=(line + "\nnot json\n").encode(), headers=w)
        assert r.status_code == 200 and r.json()["writer"] == "router"
        rej = r.json()["rejected"]
        assert {(x["line"], x["field"]) for x in rej} >= {(1, "slot"), (2, "")}
        assert c.post("/v1/ingest/bogus", content=b"{}", headers=w).status_code == 422
        assert c.get("/healthz").json() == {"ok": True}  # still serving

        st = wait_for(lambda: c.get("/v1/status").json(), 10, "status")
        assert st["cube"] is None and st["cube_error"]  # the Cube is unreachable, and it says so
        out = _cli(path, "status", "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["pid"] == daemon.proc.pid
        out = _cli(path, "actions", "--json")
        assert out.returncode == 0 and json.loads(out.stdout) == {"actions": []}
        out = _cli(path, "incidents", "--status", "maybe")
        assert out.returncode == 2 and "status" in out.stderr

        # one writer: a second daemon on the same state directory is refused
        other = sre_config(tmp_path, sre={"cube_url": config.sre.cube_url})
        other = other.model_copy(update={"data_dir": config.data_dir})
        second = DaemonProcess(other, write_config(other, tmp_path / "other.yaml")).start()
        try:
            assert second.wait_exit(60) == 1
            assert "lock" in second.tail().lower()
        finally:
            second.close()
        c.close()

        _recv_all(sock, "-", 0.3)  # drain the watchdog backlog (a full queue drops datagrams, by design)
        assert daemon.stop(30) == 0, daemon.tail()
        bye = _recv_all(sock, "STOPPING=1", 3)
        assert any("STOPPING=1" in m for m in bye), bye
        assert "samantha: stopped" in daemon.tail()
        assert not (Path(config.data_dir) / "daemon.json").exists()
        con = duckdb.connect(str(config.store_path), read_only=True)  # closed cleanly: readable by another process
        try:
            assert con.execute("SELECT count(*) FROM samples").fetchone()[0] > 0  # host collector wrote
        finally:
            con.close()
    finally:
        daemon.close()
        sock.close()
