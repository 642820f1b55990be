"""A real Triton Cube on loopback for benches and the demo: two tritonservers (one per slot) behind the
cube runtime process (`python -m samantha.twin.cube_runtime`), with a publisher key it trusts."""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from samantha.cube.bundle import SigningKey, trust_key
from samantha.cube.triton_bundle import build_triton_bundle
from samantha.harness.child_process import wait_port_file
from samantha.harness.triton_process import TritonServer, TritonUnavailable

V2_REQUEST = {"inputs": [{"name": "x", "shape": [8], "datatype": "FP32",
                          "data": [0.5, -0.2, 0.1, 0.9, 0.0, 0.3, -0.7, 0.4]}]}


@dataclass
class TritonCube:
    root: Path
    slots: dict[str, TritonServer] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    data_url: str = ""
    control_url: str = ""
    key: SigningKey | None = None
    data_client: str = "pool"
    ingest_url: str = ""  # the router's request telemetry goes here (a daemon's ingest), as the twin's does
    ingest_token_file: str = ""
    loadgen: subprocess.Popen | None = None
    loadgen_port: int = 0

    def start(self, timeout_s: float = 60.0) -> TritonCube:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            for name in ("A", "B"):
                self.slots[name] = TritonServer(self.root, name).start(timeout_s)
        except TritonUnavailable:
            self.stop()
            raise
        self.key = SigningKey.generate(self.root / "publisher.pem")
        trust_key(self.key, self.root / "trusted")
        port_file = self.root / "runtime.port"
        port_file.unlink(missing_ok=True)
        a, b = self.slots["A"], self.slots["B"]
        log = (self.root / "runtime.log").open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "samantha.twin.cube_runtime",
                                      "--port", "0", "--control-port", "0",
                                      "--slot-a-url", a.url, "--slot-a-repo", str(a.repository),
                                      "--slot-b-url", b.url, "--slot-b-repo", str(b.repository),
                                      "--trusted", str(self.root / "trusted"), "--bundles-dir", str(self.root),
                                      "--state-file", str(self.root / "runtime.json"), "--port-file", str(port_file),
                                      "--data-client", self.data_client, "--ingest-url", self.ingest_url,
                                      "--ingest-token-file", self.ingest_token_file],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        ports = wait_port_file(self.proc, port_file, timeout_s)
        if ports is None:
            self.stop()
            raise TritonUnavailable(f"the cube runtime did not start (see {self.root / 'runtime.log'})")
        self.data_url = f"http://127.0.0.1:{ports['router_port']}"
        self.control_url = f"http://127.0.0.1:{ports['control_port']}"
        return self

    def for_scenarios(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """The incumbent (v1, seed 0) on both slots (active and a healthy standby, as the twin starts) and the
        twin's load generator sending V2 requests at 0 rps (a scenario sets its rate); returns the twin-shaped
        state a scenario Runner drives."""
        incumbent = self.bundle("incumbent", "1")
        for op, body in (("load", {"bundle": incumbent}), ("flip", {}), ("load", {"bundle": incumbent})):
            r = self.op(op, **body)
            if r.status_code != 200:
                raise TritonUnavailable(f"the incumbent bundle did not go live ({op}): {r.text[:300]}")
        port_file = self.root / "loadgen.port"
        port_file.unlink(missing_ok=True)
        log = (self.root / "loadgen.log").open("ab")
        self.loadgen = subprocess.Popen([sys.executable, "-m", "samantha.twin.loadgen", "--target",
                                         self.data_url.removeprefix("http://"), "--port", "0", "--rps", "0",
                                         "--v2-model", "sensor", "--port-file", str(port_file)],
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        ports = wait_port_file(self.loadgen, port_file, timeout_s)
        if ports is None:
            raise TritonUnavailable(f"the load generator did not start (see {self.root / 'loadgen.log'})")
        self.loadgen_port = int(ports["loadgen_port"])
        control_port = int(self.control_url.rsplit(":", 1)[1])
        return {"host": "127.0.0.1", "ports": {"control_port": control_port, "loadgen_port": self.loadgen_port},
                "signing_key": str(self.root / "publisher.pem"), "bundles_dir": str(self.root),
                "bundle_format": "triton"}

    def bundle(self, name: str, version: str, **kw: Any) -> str:
        build_triton_bundle(self.root / name, name="sensor", version=version, key=self.key, **kw)
        return name

    def op(self, op: str, **body: Any) -> httpx.Response:
        return httpx.post(f"{self.control_url}/v1/{op}", json={"request_id": str(uuid.uuid4()), **body}, timeout=90)

    def state(self) -> dict[str, Any]:
        return httpx.get(f"{self.control_url}/v1/state", timeout=5).json()

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.control_url}/v1/twin/stats", timeout=5).json()["slots"]

    def active_triton(self) -> TritonServer:
        return self.slots[self.state()["active"]]

    def stop(self) -> None:
        for p in (self.loadgen, self.proc):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        for s in self.slots.values():
            s.stop()

    def __enter__(self) -> TritonCube:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
