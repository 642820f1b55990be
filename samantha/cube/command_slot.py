"""The `command` slot adapter: each slot is a server process the runtime starts itself, from a configured argv.

For everything without a repository API (llama.cpp's server, vLLM, a vendor's binary): load into the
standby = verify the signed bundle, stop the slot's process (SIGTERM to its group, SIGKILL after the
grace period), write the verified bytes into the slot's own directory, start the command with
`{model_path}` naming that copy (an argv list, never a shell), wait (bounded) for the ready URL, warm
up. The server therefore runs exactly what was signed, never a bundle directory that may have changed
since. Any failure raises SlotLoadError naming the field or the server's last log lines, and the
process is stopped; the control API then leaves the slot empty, and the active slot is never touched.
Health is the configured health URL, and a process that has exited is unhealthy whatever answers.
A server left running by a runtime that died without stopping it (SIGKILL, OOM) is found by its pid
file (pid and start time, so a reused pid is never signalled) and stopped before the slot starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil

from samantha.core.config import CubeCommandConfig
from samantha.core.process_group import stop_group
from samantha.cube.bundle import (
    META,
    BundleError,
    VerifiedBundle,
    load_trusted_keys,
    place_files,
    verify_bundle,
)
from samantha.cube.slot_adapter import Loaded, SlotLoadError

__all__ = ["CommandSlot", "model_file"]

LOG_TAIL_LINES = 5


def model_file(vb: VerifiedBundle, configured: str | None) -> str:
    """The bundle file `{model_path}` names: the configured one, else the bundle's only file (malformed otherwise)."""
    if configured is not None:
        if configured not in vb.files:
            raise BundleError("malformed", f"the bundle has no {configured} (cube.command.model_file)")
        return configured
    files = sorted(vb.files)
    if len(files) != 1:
        raise BundleError("malformed", f"the bundle carries {len(files)} files besides {META} "
                                       f"({', '.join(files) or 'none'}): set cube.command.model_file")
    return files[0]


class CommandSlot:
    def __init__(self, name: str, spec: CubeCommandConfig, trusted_path: Path, *, port: int, work_dir: Path,
                 host: str = "127.0.0.1", ready_timeout_s: float = 60.0, stop_grace_s: float = 10.0,
                 request_timeout_s: float = 30.0):
        self.name, self.spec, self.trusted_path = name, spec, trusted_path
        self.port, self.host = port, host
        self.dir = Path(work_dir) / name.lower()
        self.ready_timeout_s, self.stop_grace_s, self.request_timeout_s = ready_timeout_s, stop_grace_s, request_timeout_s
        self.proc: subprocess.Popen | None = None
        self.http = httpx.AsyncClient(timeout=2.0)

    @property
    def log_path(self) -> Path:
        return self.dir / "server.log"

    @property
    def pid_path(self) -> Path:
        return self.dir / "server.pid"

    def _url(self, template: str) -> str:
        return template.format(host=self.host, port=self.port, slot=self.name)

    def verify(self, path: Path) -> VerifiedBundle:
        vb = verify_bundle(path, load_trusted_keys(self.trusted_path),
                           max_file_bytes=int(self.spec.max_model_mb * 1024 * 1024))
        model_file(vb, self.spec.model_file)
        return vb

    async def load(self, vb: VerifiedBundle) -> Loaded:
        await self._stop()  # the standby's old server goes first: its port is the new one's
        try:
            bundle_dir = await asyncio.to_thread(place_files, vb, self.dir / "bundle")
        except OSError as e:
            raise SlotLoadError("slot_io", f"cannot write the verified bundle into {self.dir}: {e}", status=503) from None
        values = {"model_path": str(bundle_dir / model_file(vb, self.spec.model_file)), "bundle_dir": str(bundle_dir),
                  "port": self.port, "host": self.host, "slot": self.name}
        argv = [a.format(**values) for a in self.spec.argv]
        try:
            with self.log_path.open("ab") as log:
                self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True)  # its own group: stopped with its children
        except OSError as e:
            raise SlotLoadError("start_failed", f"cannot start {argv[0]!r}: {e.strerror or e}",
                                field="cube.command.argv") from None
        self._record_pid(self.proc.pid)
        await self._wait_ready()
        await self._warm_up()
        # no inference path or output contract: the router forwards the caller's path, the protocol reads the answer
        return Loaded(path="", contract=None, detail=f"pid {self.proc.pid} on port {self.port}")

    async def _wait_ready(self) -> None:
        url, deadline, last = self._url(self.spec.ready_url), time.monotonic() + self.ready_timeout_s, "no answer"
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise SlotLoadError("start_failed", f"the slot's server exited with {rc} before it was ready: "
                                    f"{self.tail()}")
            try:
                r = await self.http.get(url, timeout=min(2.0, max(0.1, deadline - time.monotonic())))
                if r.status_code == 200:
                    return
                last = f"{url} answered {r.status_code}"
            except httpx.HTTPError as e:
                last = f"{url}: {type(e).__name__}"
            await asyncio.sleep(0.1)
        await self._stop()
        raise SlotLoadError("never_ready", f"the slot's server was not ready within {self.ready_timeout_s:g} s "
                            f"({last}); log: {self.tail()}", status=503)

    async def _warm_up(self) -> None:
        if self.spec.warmup_path is None:
            return
        url = f"http://{self.host}:{self.port}{self.spec.warmup_path}"
        for _ in range(self.spec.warmup_requests):
            try:
                await self.http.post(url, json=self.spec.warmup_body, timeout=self.request_timeout_s)
            except httpx.HTTPError:
                return  # a defective bundle may fail here; judging it is the canary's job, not the load's

    async def health(self) -> tuple[bool, str | None]:
        if self.proc is None:
            return False, "no server started"
        if self.proc.poll() is not None:
            return False, f"the slot's server exited with {self.proc.returncode}: {self.tail()}"
        try:
            r = await self.http.get(self._url(self.spec.health_url))
        except httpx.HTTPError as e:
            return False, f"health probe failed: {type(e).__name__}: {e}"
        return (True, None) if r.status_code == 200 else (False, f"health probe answered {r.status_code}")

    def tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        except OSError:
            return "(no log)"
        return " | ".join(lines)[-600:] or "(empty log)"

    def _record_pid(self, pid: int) -> None:
        with contextlib.suppress(psutil.Error, OSError):
            self.pid_path.write_text(json.dumps({"pid": pid, "create_time": psutil.Process(pid).create_time()}))

    def _stop_leftover(self) -> None:
        """Stop the server a previous runtime started and never stopped (it holds the slot's port)."""
        try:
            doc = json.loads(self.pid_path.read_text())
            p = psutil.Process(int(doc["pid"]))
            if abs(p.create_time() - float(doc["create_time"])) > 0.01:
                return  # the pid was reused by another process: never signal it
        except (OSError, ValueError, KeyError, TypeError, psutil.Error):
            return
        for sig, wait_s in ((signal.SIGTERM, self.stop_grace_s), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, sig)  # it leads its own group (start_new_session): its children go too
            if not psutil.wait_procs([p], timeout=wait_s)[1]:
                return

    async def _stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            await asyncio.to_thread(stop_group, proc, self.stop_grace_s)
        else:
            await asyncio.to_thread(self._stop_leftover)
        self.pid_path.unlink(missing_ok=True)

    async def close(self) -> None:
        await self._stop()
        await self.http.aclose()
