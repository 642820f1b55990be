"""Chaos test kit: a real twin and a real chaos host process (`samantha chaos serve`), ephemeral ports."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from samantha.config import SamanthaConfig
from tests.conftest import free_port
from tests.twin.twinkit import EPHEMERAL, Twin, start_twin


def chaos_config(tmp_path: Path, *, rps: float = 100, **chaos: Any) -> SamanthaConfig:
    port = free_port()
    return SamanthaConfig.model_validate({
        "data_dir": str(tmp_path / "state"), "api": {"port": port},
        "twin": {**EPHEMERAL, "rps": rps, "ingest_url": f"http://127.0.0.1:{port}/v1/ingest/requests",
                 "telemetry_batch_ms": 50},
        "chaos": {"probe_interval_s": 0.3, **chaos}})


def write_config(config: SamanthaConfig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_defaults=True)))
    return path


class Host:
    """`samantha chaos serve` as a child process."""

    def __init__(self, config: SamanthaConfig, config_path: Path) -> None:
        self.config, self.config_path = config, config_path
        self.url = f"http://127.0.0.1:{config.api.port}"
        self.proc: subprocess.Popen | None = None
        self.log = Path(config.data_dir).parent / "host.log"

    def start(self, timeout: float = 60.0) -> Host:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as f:
            self.proc = subprocess.Popen([sys.executable, "-m", "samantha", "chaos", "serve", "-c",
                                          str(self.config_path)], stdout=f, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=os.environ.copy())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"host exited {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.05)
        raise AssertionError(f"host not ready:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def get(self, path: str, **kw: Any) -> Any:
        r = httpx.get(self.url + path, timeout=30, **kw)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, timeout: float = 300, **kw: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=timeout, **kw)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for(pred: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@contextlib.contextmanager
def chaos_env(tmp_path: Path, **kw: Any) -> Iterator[tuple[Twin, Host]]:
    config = chaos_config(tmp_path, **kw)
    path = write_config(config, tmp_path / "samantha.yaml")
    host = Host(config, path).start()
    try:
        with contextlib.contextmanager(start_twin)(config) as twin:
            try:
                yield twin, host
            finally:
                host.stop()
    finally:
        host.stop()
