"""`samantha run` as a child process: for scenario runs, benchmarks, the demo and tests.

Starts the daemon on a config file, waits until its API answers, calls it as its local admin,
measures its footprint (RSS, USS, CPU share) and stops it with SIGTERM (SIGKILL past a timeout)
or kills it outright (a crash). Always reaped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import psutil
import yaml

from samantha.api.client import DaemonClient
from samantha.core.config import SamanthaConfig


def write_config(config: SamanthaConfig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_defaults=True)))
    return path


class DaemonProcess:
    def __init__(self, config: SamanthaConfig, config_path: Path, *, env: dict[str, str] | None = None,
                 log: Path | None = None) -> None:
        if not config.api.port:
            raise ValueError("a child daemon needs a fixed api.port (pick a free one)")
        self.config, self.config_path = config, config_path
        self.env = {**os.environ, **(env or {})}
        self.log = log or Path(config.data_dir).parent / f"daemon-{int(time.time() * 1000)}.log"
        self.url = f"http://{config.api.host}:{config.api.port}"
        self.client = DaemonClient.from_config(config, timeout=10.0)
        self.proc: subprocess.Popen[bytes] | None = None
        self._ps: psutil.Process | None = None
        self._cpu0: tuple[float, float] | None = None

    def start(self) -> DaemonProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as f:
            self.proc = subprocess.Popen([sys.executable, "-m", "samantha", "run", "-c", str(self.config_path)],
                                         stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env)
        self._ps = psutil.Process(self.proc.pid)
        return self

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def wait_ready(self, timeout: float = 60.0, *, verdicts: bool = False) -> DaemonProcess:
        """Until /healthz answers (and, with `verdicts`, the first cycle has evaluated the gates)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited with {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError, ValueError):
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200 and (
                        not verdicts or self.client.status().get("verdicts")):
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"the daemon was not ready in {timeout:.0f}s:\n{self.tail()}")

    def wait_requests(self, rows: int = 200, timeout: float = 30.0) -> DaemonProcess:
        """Until `rows` request rows are committed in the daemon: pre-flight's error budget is unknown before."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                if self.client.status()["telemetry"]["committed_by_table"].get("requests", 0) >= rows:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"the daemon had not received {rows} request rows in {timeout:.0f}s:\n{self.tail()}")

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    # -- the API as the daemon's local admin (the token file is re-read: every start writes a new one)
    def request(self, method: str, path: str, *, timeout: float = 30.0, **kw: Any) -> httpx.Response:
        return httpx.request(method, self.url + path, headers=self.client.headers(), timeout=timeout, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        """The JSON body; raises on an error status."""
        r = self.request("GET", path, **kw)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, *, timeout: float = 300.0, **kw: Any) -> httpx.Response:
        return self.request("POST", path, timeout=timeout, **kw)

    # -- footprint
    def cpu_mark(self) -> None:
        """Start of a CPU measurement window."""
        assert self._ps is not None
        t = self._ps.cpu_times()
        self._cpu0 = (t.user + t.system, time.monotonic())

    def footprint(self) -> dict[str, Any]:
        """RSS and USS now (MB), and the CPU share of one core since `cpu_mark` (percent)."""
        assert self._ps is not None
        mem = self._ps.memory_full_info()
        out: dict[str, Any] = {"rss_mb": round(mem.rss / 2**20, 1), "uss_mb": round(mem.uss / 2**20, 1)}
        if self._cpu0 is not None:
            t = self._ps.cpu_times()
            wall = time.monotonic() - self._cpu0[1]
            out["cpu_pct"] = round(100 * (t.user + t.system - self._cpu0[0]) / wall, 1) if wall > 0 else None
            out["cpu_window_s"] = round(wall, 1)
        return out

    # -- stop
    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not go; returns the exit code."""
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        return p.returncode

    def wait_exit(self, timeout: float) -> int:
        """The exit code of a daemon that goes by itself (a refused start, a crash hook)."""
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing runs on the way out."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        self.kill()
        self.client.close()

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
