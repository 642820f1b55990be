"""Runs the twin's processes as one process group, restarts crashed ones, and stops them all.

The supervisor is the group leader (started in a new session by `twin up`); every
child is in its group and gets SIGTERM if the supervisor dies (PR_SET_PDEATHSIG),
so `twin down` (killpg) and a lost supervisor both leave no orphan.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from samantha.core.config import SamanthaConfig
from samantha.core.writer_tokens import ensure_token_file
from samantha.cube.bundle import BundleError, SigningKey, key_hint, load_trusted_keys, trust_key
from samantha.cube.endpoints import TWIN_STATE_FILE
from samantha.twin.toy_bundle import build_bundle, verify_toy_bundle

STATE_FILE = TWIN_STATE_FILE  # the agent reads it through samantha/cube/endpoints.py
GOOD_BUNDLE = "sensor-mlp-1"
MAX_RESTARTS = 20


@dataclass(frozen=True)
class TwinPaths:
    run_dir: Path
    bundles_dir: Path
    signing_key: Path
    trusted_keys: Path

    @classmethod
    def of(cls, config: SamanthaConfig) -> TwinPaths:
        t = config.twin
        return cls(config.resolve(t.run_dir).absolute(), config.resolve(t.bundles_dir).absolute(),
                   config.resolve(t.signing_key).absolute(), config.resolve(t.trusted_keys).absolute())

    @property
    def state_file(self) -> Path:
        return self.run_dir / STATE_FILE


def proxy_available() -> bool:
    return importlib.util.find_spec("samantha.proxy") is not None


def prepare(config: SamanthaConfig) -> Path:
    """Signing key (trusted), and a good bundle built and signed on the fly. Returns the bundle dir."""
    paths = TwinPaths.of(config)
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    key = _publisher_key(paths.signing_key)
    if key_hint(key.public_pem) not in load_trusted_keys(paths.trusted_keys) and not paths.trusted_keys.is_file():
        trust_key(key, paths.trusted_keys)  # a single trusted-key file is the operator's: left alone
    good = paths.bundles_dir / GOOD_BUNDLE
    try:
        verify_toy_bundle(good, load_trusted_keys(paths.trusted_keys))
    except BundleError:
        import shutil

        shutil.rmtree(good, ignore_errors=True)
        build_bundle(good, name="sensor-mlp", version="1", seed=0, key=key)
    return good


def _publisher_key(path: Path) -> SigningKey:
    """The twin's own publisher key. An old ed25519 key (samantha-bundle/1) is set aside and replaced."""
    try:
        return SigningKey.load_or_create(path)
    except BundleError:
        path.rename(path.with_name(path.name + ".ed25519.old"))
        return SigningKey.generate(path)


PORT_FIELDS = ("router_port", "control_port", "slot_a_port", "slot_b_port", "proxy_api_port",
               "proxy_a_port", "proxy_b_port", "loadgen_port")


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, path)


class Supervisor:
    def _ingest_token_file(self) -> str:
        """The router's writer credential, created here when the twin starts before the daemon (same file)."""
        if not self.t.ingest_token_file or not self.t.ingest_url:
            return ""
        path = self.config.resolve(self.t.ingest_token_file)
        ensure_token_file(path)
        return str(path)

    def __init__(self, config: SamanthaConfig, rps: float | None = None):
        self.config = config
        self.t = config.twin
        self.paths = TwinPaths.of(config)
        self.rps = self.t.rps if rps is None else rps
        self.ports = {n: getattr(self.t, n) for n in PORT_FIELDS}
        self.proxy = self.t.use_proxy and proxy_available()
        self.procs: dict[str, subprocess.Popen] = {}
        self.restarts: dict[str, int] = {}
        self.stopping = False
        self.ready = False
        self.good = prepare(config)

    def _addr(self, port: str) -> str:
        return f"{self.t.host}:{self.ports[port]}"

    def _command(self, name: str) -> list[str]:
        """Built at spawn time from the ports known so far; port 0 is bound by the child itself."""
        py, h, p, rd = sys.executable, self.t.host, self.ports, self.paths.run_dir
        port_file = ["--port-file", str(rd / f"{name}.port")]
        if name.startswith("slot-"):
            s = name[-1]
            return [py, "-m", "samantha.twin.slot", "--name", s.upper(), "--host", h,
                    "--port", str(p[f"slot_{s}_port"]), "--trusted", str(self.paths.trusted_keys),
                    "--bundle", str(self.good), "--state-file", str(rd / f"slot-{s}.json"),
                    "--drain-timeout", str(self.t.drain_timeout_s), "--leak-cap-mb", str(self.t.leak_cap_mb),
                    *port_file]
        if name == "proxy":
            return [py, "-m", "samantha.proxy", "--host", h, "--port", str(p["proxy_api_port"]),
                    "--ready-file", str(rd / "proxy.port")]
        if name == "router":
            data = {s: self._addr(f"proxy_{s}_port" if self.proxy else f"slot_{s}_port") for s in ("a", "b")}
            return [py, "-m", "samantha.twin.router_process", "--host", h, "--port", str(p["router_port"]),
                    "--control-port", str(p["control_port"]),
                    "--slot-a-data", data["a"], "--slot-a-control", self._addr("slot_a_port"),
                    "--slot-b-data", data["b"], "--slot-b-control", self._addr("slot_b_port"),
                    "--trusted", str(self.paths.trusted_keys), "--state-file", str(rd / "router.json"),
                    "--bundles-dir", str(self.paths.bundles_dir), "--ingest-url", self.t.ingest_url or "",
                    "--ingest-token-file", self._ingest_token_file(),
                    "--batch-ms", str(self.t.telemetry_batch_ms), "--buffer-max", str(self.t.telemetry_buffer_max),
                    "--timeout", str(self.t.upstream_timeout_s), "--health-interval", str(self.t.health_interval_s),
                    "--probe-percent", str(self.t.probe_percent), *port_file]
        if name == "loadgen":
            return [py, "-m", "samantha.twin.loadgen", "--target", self._addr("router_port"),
                    "--host", h, "--port", str(p["loadgen_port"]), "--rps", str(self.rps), *port_file]
        raise ValueError(name)

    def _spawn(self, name: str, timeout: float = 30.0) -> None:
        """Start `name` and wait until it has bound its ports (recorded in self.ports)."""
        port_file = self.paths.run_dir / f"{name}.port"
        port_file.unlink(missing_ok=True)
        log = open(self.paths.run_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        self.procs[name] = proc = subprocess.Popen(self._command(name), stdout=log, stderr=subprocess.STDOUT,
                                                   stdin=subprocess.DEVNULL, env=os.environ.copy(),
                                                   preexec_fn=_die_with_parent)
        log.close()
        deadline = time.monotonic() + timeout
        while not port_file.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} during start-up "
                                   f"(see {self.paths.run_dir / (name + '.log')})")
            if time.monotonic() > deadline or self.stopping:
                raise RuntimeError(f"{name} did not bind its port within {timeout:.0f} s")
            time.sleep(0.02)
        text = port_file.read_text().strip()
        if name == "proxy":
            self.ports["proxy_api_port"] = int(text.rsplit(":", 1)[1].rstrip("/"))
        elif name.startswith("slot-"):
            self.ports[f"slot_{name[-1]}_port"] = json.loads(text)["port"]
        else:
            self.ports.update(json.loads(text))

    def _configure_proxies(self) -> None:
        from samantha.cube.proxy_client import ProxyClient

        with ProxyClient(f"http://{self._addr('proxy_api_port')}") as c:  # populate: create or keep, idempotent
            infos = c.populate([{"name": f"slot-{s}", "listen": self._addr(f"proxy_{s}_port"),
                                 "upstream": self._addr(f"slot_{s}_port"), "enabled": True} for s in ("a", "b")])
        for info in infos:
            self.ports[f"proxy_{info.name[-1]}_port"] = info.listen_port

    def write_state(self) -> None:
        write_json(self.paths.state_file, {
            "pid": os.getpid(), "pgid": os.getpgrp(), "ready": self.ready, "stopping": self.stopping,
            "host": self.t.host, "ports": self.ports, "proxy": self.proxy, "rps": self.rps,
            "children": {n: p.pid for n, p in self.procs.items()}, "restarts": self.restarts,
            "good_bundle": str(self.good), "run_dir": str(self.paths.run_dir),
            "bundles_dir": str(self.paths.bundles_dir), "trusted_keys": str(self.paths.trusted_keys),
            "signing_key": str(self.paths.signing_key), "ingest_url": self.t.ingest_url, "updated": time.time()})

    def start(self) -> None:
        for name in ("slot-a", "slot-b"):
            self._spawn(name)
        if self.proxy:
            self._spawn("proxy")
            self._configure_proxies()
        self._spawn("router")
        self._spawn("loadgen")
        self.ready = True
        self.write_state()

    def watch(self) -> None:
        while not self.stopping:
            time.sleep(0.2)
            for name, proc in list(self.procs.items()):
                if proc.poll() is None or self.stopping:
                    continue
                n = self.restarts.get(name, 0)
                if n >= MAX_RESTARTS:
                    continue  # crash loop: leave it down, visible in status
                self.restarts[name] = n + 1
                time.sleep(min(2.0, 0.2 * (n + 1)))
                try:
                    self._spawn(name)  # same ports as before: everyone else keeps its addresses
                    if name == "proxy":
                        self._configure_proxies()
                except (RuntimeError, OSError, httpx.HTTPError) as e:
                    print(f"restart of {name} failed: {e}", file=sys.stderr, flush=True)
                self.write_state()

    def stop(self) -> None:
        self.stopping = True
        for name in ("loadgen", "router", "proxy", "slot-a", "slot-b"):
            p = self.procs.get(name)
            if p is not None and p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 5.0
        for p in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.01, deadline - time.monotonic()))
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(5)


def run(config: SamanthaConfig, rps: float | None = None) -> int:
    sup = Supervisor(config, rps)

    def _stop(signum: int, frame: object) -> None:
        sup.stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    sup.write_state()
    try:
        sup.start()
        sup.watch()
        return 0
    except RuntimeError as e:
        print(f"twin failed to start: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        sup.stop()
        sup.paths.state_file.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m samantha.twin.supervisor")
    ap.add_argument("--config-json", required=True, help="SamanthaConfig as JSON")
    ap.add_argument("--rps", type=float)
    args = ap.parse_args(argv)
    sys.exit(run(SamanthaConfig.model_validate_json(args.config_json), args.rps))


if __name__ == "__main__":
    main()
