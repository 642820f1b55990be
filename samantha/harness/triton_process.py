"""A real `tritonserver` on loopback for tests, benches and the demo: explicit model control, bounded waits.

Triton comes from its own venv (`make triton`: `.venv-triton`, the nvidia-pytriton wheel). The binary is
started directly (PyTriton's wrapper fails on Python 3.11.7) with the wheel's libraries on
LD_LIBRARY_PATH, and the python backend plus its 3.11 stub as the backend directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import samantha
from samantha.core.ports import free_port
from samantha.harness.child_process import stop_group, wait_healthy

__all__ = ["TritonHome", "TritonServer", "TritonUnavailable", "find_triton"]


class TritonUnavailable(RuntimeError):
    """Triton cannot run here; the message says why (tests skip with it)."""


@dataclass(frozen=True)
class TritonHome:
    venv: Path

    @property
    def site(self) -> Path:
        return self.venv / "lib" / "python3.11" / "site-packages"

    @property
    def binary(self) -> Path:
        return self.site / "pytriton" / "tritonserver" / "bin" / "tritonserver"

    @property
    def backends(self) -> Path:
        return self.venv / "backends"


def find_triton() -> TritonHome:
    """`$SAMANTHA_TRITON_HOME`, else `.venv-triton` at the repository root; raises TritonUnavailable."""
    env = os.environ.get("SAMANTHA_TRITON_HOME")
    venv = Path(env) if env else Path(samantha.__file__).resolve().parents[1] / ".venv-triton"
    home = TritonHome(venv)
    if not home.binary.exists():
        raise TritonUnavailable(f"no tritonserver at {home.binary}: run `make triton` (nvidia-pytriton 0.7.0)")
    if not (home.backends / "python" / "triton_python_backend_stub").exists():
        raise TritonUnavailable(f"no python backend in {home.backends}: run `make triton`")
    return home


@dataclass
class TritonServer:
    """One tritonserver process with its own model repository (a slot)."""

    root: Path
    name: str = "triton"
    home: TritonHome | None = None
    http_port: int = 0
    metrics_port: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def repository(self) -> Path:
        return self.root / f"{self.name}-repo"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.root / f"{self.name}.log"

    def start(self, timeout_s: float = 60.0) -> TritonServer:
        home = self.home or find_triton()
        self.repository.mkdir(parents=True, exist_ok=True)
        self.http_port = self.http_port or free_port()
        self.metrics_port = self.metrics_port or free_port()
        libs = home.site / "nvidia_pytriton.libs"
        env = {**os.environ, "LD_LIBRARY_PATH": f"{libs}:{os.environ.get('LD_LIBRARY_PATH', '')}",
               "SAMANTHA_TRITON_SITE": str(home.site)}
        cmd = [str(home.binary), f"--model-repository={self.repository}", "--model-control-mode=explicit",
               f"--backend-directory={home.backends}", "--http-address=127.0.0.1", f"--http-port={self.http_port}",
               "--allow-grpc=false", "--allow-metrics=true", "--metrics-address=127.0.0.1",
               f"--metrics-port={self.metrics_port}", "--allow-gpu-metrics=false", "--strict-readiness=false",
               "--exit-timeout-secs=3", "--log-verbose=0"]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()
        wait_healthy(self.proc, f"{self.url}/v2/health/live", timeout_s, fail=TritonUnavailable, what="tritonserver",
                     tail=self.tail)
        return self

    def tail(self, n: int = 5) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(ln for ln in lines if "NVML" not in ln and "CUDA" not in ln and "DCGM" not in ln)[-800:] \
            if lines else "(empty log)"

    def kill(self) -> None:
        """SIGKILL the server's process group (the stub processes too): a crashed slot."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout_s: float = 10.0) -> None:
        stop_group(self.proc, timeout_s)

    def clear_repository(self) -> None:
        shutil.rmtree(self.repository, ignore_errors=True)
        self.repository.mkdir(parents=True)

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
