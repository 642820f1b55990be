"""SRE test kit: a real twin and a real daemon process on ephemeral ports, always torn down."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from samantha.api.client import DaemonClient
from samantha.config import SamanthaConfig
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
    }
    for name, values in sections.items():
        doc[name] = {**doc.get(name, {}), **values}
    return SamanthaConfig.model_validate(doc)


def write_config(config: SamanthaConfig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_defaults=True)))
    return path


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


class DaemonProc:
    """`samantha run` as a child process."""

    def __init__(self, config: SamanthaConfig, config_path: Path, env: dict[str, str] | None = None) -> None:
        self.config, self.config_path = config, config_path
        self.env = {**os.environ, **(env or {})}
        self.log = Path(config.data_dir).parent / f"daemon-{int(time.time() * 1000)}.log"
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{config.api.port}"
        self.client = DaemonClient(self.url, timeout=10.0)

    def start(self) -> DaemonProc:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as f:
            self.proc = subprocess.Popen([sys.executable, "-m", "samantha", "run", "-c", str(self.config_path)],
                                         stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env)
        return self

    def wait_ready(self, timeout: float = 60.0) -> DaemonProc:
        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.tail()}")
            return httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if up():
                    return self
            time.sleep(0.1)
        raise AssertionError(f"daemon not ready in {timeout:.0f}s:\n{self.tail()}")

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not go; returns the exit code."""
        p = self.proc
        if p is None or p.poll() is not None:
            return None if p is None else p.returncode
        p.send_signal(signal.SIGTERM)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
            raise AssertionError(f"daemon ignored SIGTERM for {timeout:.0f}s:\n{self.tail()}") from None

    def close(self) -> None:
        with contextlib.suppress(AssertionError):
            self.stop()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.client.close()


@contextlib.contextmanager
def twin_and_daemon(tmp_path: Path, env: dict[str, str] | None = None, **kw: Any) -> Iterator[tuple[Twin, DaemonProc]]:
    config = sre_config(tmp_path, **kw)
    path = write_config(config, tmp_path / "samantha.yaml")
    with contextlib.contextmanager(start_twin)(config) as twin:
        daemon = DaemonProc(config, path, env)
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


def flips(daemon: DaemonProc) -> list[dict[str, Any]]:
    return daemon.client.actions(kind="flip")
