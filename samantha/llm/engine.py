"""The llama.cpp engine: one model, loaded once, in a dedicated worker process.

Why a process and not a thread: a llama.cpp call is C code that cannot be
interrupted from Python. A thread running it can be left behind but never
stopped; it keeps both cores busy and holds the model until it finishes. A
worker process can be killed, so a call past its hard timeout is truly
abandoned: the engine kills the worker, reaps it, returns the typed fallback,
and starts a fresh worker on the next call (a reload: ~0.5 s for the default
model). The pipe round trip costs about a millisecond per call
(`samantha llm check` reports it).

`complete()` never raises: every failure is a typed `LlmReply` with an outcome,
and every call (including refused ones) produces an `LlmCallRecord` for the sink.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from samantha.core.clock import REAL_CLOCK, Clock
from samantha.core.config import LlmConfig, SamanthaConfig
from samantha.llm.model_file import ModelChoice, ModelUnavailable, model_sha256, resolve_model
from samantha.llm.prompts import RenderedPrompt
from samantha.llm.records import JsonlSink, LlmCallRecord, Outcome, Sink, deliver

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class LlmRequest(Generic[T]):
    """One typed call: a rendered prompt, the JSON schema that constrains decoding, and the
    pydantic model the output must then validate against."""

    task: str
    prompt: RenderedPrompt
    schema: dict[str, Any]
    output: type[T]
    max_tokens: int | None = None


@dataclass(frozen=True)
class LlmReply(Generic[T]):
    outcome: Outcome
    value: T | None
    record: LlmCallRecord
    text: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


class EngineStatus(BaseModel):
    enabled: bool
    available: bool
    model: str | None = None
    model_path: str | None = None
    model_source: str | None = None
    model_sha256: str | None = None
    chat_format: str | None = None
    worker_pid: int | None = None
    worker_start_s: float | None = None
    load_s: float | None = None
    warm_s: float | None = None
    error: str | None = None


def _validation_message(e: ValidationError) -> str:
    parts = []
    for err in e.errors()[:5]:
        loc = ".".join(str(x) for x in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


class _Worker:
    """A running worker process and the thread that reads its replies."""

    def __init__(self, proc: subprocess.Popen, log_file: IO[bytes] | None) -> None:
        self.proc = proc
        self.replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._log_file = log_file
        self._reader = threading.Thread(target=self._read, name=f"llm-worker-{proc.pid}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                self.replies.put(json.loads(raw))
            except ValueError:
                log.warning("llm worker wrote a non-JSON line: %.200r", raw)
        self.replies.put(None)  # EOF: the worker is gone

    def send(self, obj: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.error("llm worker %d did not die after SIGKILL", self.proc.pid)
        for f in (self.proc.stdin, self.proc.stdout, self._log_file):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass
        self._reader.join(timeout=2)


class LlmEngine:
    """Thread-safe; one call runs at a time (the worker serves one request at a time)."""

    def __init__(self, config: LlmConfig, *, data_dir: Path, sink: Sink | None = None,
                 clock: Clock = REAL_CLOCK, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.data_dir = Path(data_dir)
        self.sink = sink
        self.clock = clock
        self._env = dict(os.environ if env is None else env)
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        self._choice: ModelChoice | None = None
        self._sha: str | None = None
        self._failed_at: float | None = None
        self._seq = 0
        self._warm_prompt: RenderedPrompt | None = None
        self._respawn: threading.Thread | None = None
        self._closed = False
        self._status = EngineStatus(enabled=config.enabled, available=False)

    @classmethod
    def from_config(cls, config: SamanthaConfig, *, sink: Sink | None = None, clock: Clock = REAL_CLOCK,
                    env: dict[str, str] | None = None) -> LlmEngine:
        """The engine for a config; the default sink appends JSONL at `llm.calls_log` under data_dir."""
        llm = config.llm
        for key in ("model_path", "prompts_dir"):
            if getattr(llm, key):
                llm = llm.model_copy(update={key: str(config.resolve(getattr(llm, key)))})
        if sink is None:
            sink = JsonlSink(config.resolve(llm.calls_log))
        return cls(llm, data_dir=Path(config.data_dir), sink=sink, clock=clock, env=env)

    # ---- lifecycle -------------------------------------------------------------------------

    def status(self) -> EngineStatus:
        return self._status.model_copy()

    def start(self, warm: RenderedPrompt | None = None) -> EngineStatus:
        """Resolve, hash and load the model now (otherwise the first call does). Never raises.

        `warm`: a prompt to evaluate once, so the first real call that shares its prefix (the
        task's system text) does not pay for it.
        """
        if not self.config.enabled:
            return self.status()
        self._warm_prompt = warm
        with self._lock:
            if self._ensure_worker(force=True) and warm is not None:
                self._warm(warm)
        return self.status()

    def _respawn_in_background(self) -> None:
        """After a timeout kill, reload (and re-warm) off the caller's path, so the next call
        does not pay a cold start; a call arriving meanwhile waits at most its timeout ("busy")."""
        if self._respawn is not None and self._respawn.is_alive():
            return

        def respawn() -> None:
            with self._lock:
                if self._closed:
                    return
                if self._worker is None and self._ensure_worker() and self._warm_prompt is not None:
                    self._warm(self._warm_prompt)

        self._respawn = threading.Thread(target=respawn, name="llm-respawn", daemon=True)
        self._respawn.start()

    def _warm(self, prompt: RenderedPrompt) -> None:
        assert self._worker is not None
        self._seq += 1
        w = self._worker
        t0 = self.clock.monotonic()
        try:
            w.send({"id": self._seq, "warm": True, "system": prompt.system, "user": prompt.user})
            while True:
                reply = w.replies.get(timeout=self.config.load_timeout_s)
                if reply is None:
                    raise OSError("worker exited during warm-up")
                if reply.get("id") == self._seq:
                    break
        except (OSError, queue.Empty):
            self._stop_worker()  # a worker that cannot even warm up is restarted by the next call
            return
        self._status = self._status.model_copy(update={"warm_s": round(self.clock.monotonic() - t0, 4)})

    def close(self) -> None:
        self._closed = True
        respawn = self._respawn
        if respawn is not None and respawn.is_alive():
            w = self._worker
            if w is not None and w.proc.poll() is None:
                w.proc.kill()  # ends a warm-up in progress at once (EOF on its pipe)
            respawn.join(timeout=self.config.load_timeout_s + 5)
        with self._lock:
            self._stop_worker()

    def __enter__(self) -> LlmEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # last resort against orphans; close() is the normal path
        w = getattr(self, "_worker", None)
        if w is not None and w.proc.poll() is None:
            w.proc.kill()

    def _stop_worker(self) -> None:
        if self._worker is not None:
            self._worker.kill()
            self._worker = None
        self._status = self._status.model_copy(update={"worker_pid": None})

    def _fail(self, message: str) -> None:
        self._failed_at = self.clock.monotonic()
        self._status = self._status.model_copy(update={"available": False, "error": message, "worker_pid": None})
        log.warning("llm unavailable: %s", message)

    def _ensure_worker(self, *, force: bool = False) -> bool:
        """A live, loaded worker, starting one if needed; False (with status.error set) if impossible."""
        if self._worker is not None and self._worker.proc.poll() is None:
            return True
        if self._worker is not None:  # it died between calls
            self._stop_worker()
        if (not force and self._failed_at is not None
                and self.clock.monotonic() - self._failed_at < self.config.retry_load_after_s):
            return False
        try:
            self._choice = resolve_model(self.config.model_path, self._env)
            self._sha = model_sha256(self._choice.path, self.data_dir / "llm" / "sha256-cache.json")
        except (ModelUnavailable, OSError) as e:
            self._fail(str(e))
            return False
        self._status = self._status.model_copy(update={
            "model": self._choice.path.name, "model_path": str(self._choice.path),
            "model_source": self._choice.source, "model_sha256": self._sha})
        settings = {"model_path": str(self._choice.path), "n_ctx": self.config.n_ctx,
                    "n_threads": self.config.n_threads, "n_gpu_layers": self.config.n_gpu_layers,
                    "seed": self.config.seed, "chat_format": self.config.chat_format, "nice": self.config.nice,
                    "sched_idle": self.config.sched_idle}
        log_path = self.data_dir / "llm" / "worker.log"
        t0 = self.clock.monotonic()
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_file: IO[bytes] | None = log_path.open("wb")
        except OSError:
            log_file = None
        try:
            proc = subprocess.Popen([sys.executable, "-m", "samantha.llm.worker", json.dumps(settings)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=log_file or subprocess.DEVNULL, env=self._env, close_fds=True)
        except OSError as e:
            self._fail(f"cannot start the llm worker: {e}")
            return False
        worker = _Worker(proc, log_file)
        try:
            first = worker.replies.get(timeout=self.config.load_timeout_s)
        except queue.Empty:
            first = {"type": "load_error", "error": f"model load exceeded load_timeout_s={self.config.load_timeout_s}"}
        if first is None or first.get("type") != "ready":
            worker.kill()
            reason = (first or {}).get("error") or f"worker exited with code {proc.returncode} while loading"
            self._fail(f"cannot load {self._choice.path}: {reason} (worker log: {log_path})")
            return False
        self._worker = worker
        self._failed_at = None
        self._status = self._status.model_copy(update={
            "available": True, "error": None, "chat_format": first.get("chat_format"), "worker_pid": proc.pid,
            "worker_start_s": round(self.clock.monotonic() - t0, 4), "load_s": round(first.get("load_s", 0.0), 4)})
        return True

    # ---- calls -----------------------------------------------------------------------------

    def complete(self, request: LlmRequest[T]) -> LlmReply[T]:
        """Run one constrained call within `timeout_s`. Never raises."""
        t0 = self.clock.monotonic()
        ts = self.clock.time()
        try:
            outcome, value, text, extra = self._complete(request, t0)
        except Exception as e:  # a bug here must still not reach the caller
            log.exception("llm call failed unexpectedly")
            outcome, value, text, extra = "error", None, None, {"error": f"{type(e).__name__}: {e}"}
        record = LlmCallRecord(
            ts=ts, task=request.task, template=request.prompt.template,
            template_sha256=request.prompt.template_sha256,
            model=self._status.model, model_sha256=self._status.model_sha256,
            prompt_chars=request.prompt.chars, latency_s=round(self.clock.monotonic() - t0, 4),
            outcome=outcome, **extra)
        deliver(self.sink, record)
        if outcome == "timeout":
            self._respawn_in_background()
        return LlmReply(outcome=outcome, value=value, record=record, text=text)

    async def acomplete(self, request: LlmRequest[T]) -> LlmReply[T]:
        """`complete` off the event loop; returns within timeout_s (+ worker kill time)."""
        return await asyncio.to_thread(self.complete, request)

    def _complete(self, request: LlmRequest[T], t0: float) -> tuple[Outcome, T | None, str | None, dict]:
        if not self.config.enabled:
            return "disabled", None, None, {}
        # timeout_s bounds the wait for the worker and then the inference; loading has its own limit
        if not self._lock.acquire(timeout=self.config.timeout_s):
            return "busy", None, None, {"error": "another llm call held the worker past this call's timeout"}
        try:
            if not self._ensure_worker():
                return "unavailable", None, None, {"error": self._status.error}
            worker = self._worker
            assert worker is not None
            self._seq += 1
            req_id = self._seq
            deadline = self.clock.monotonic() + self.config.timeout_s
            try:
                worker.send({"id": req_id, "system": request.prompt.system, "user": request.prompt.user,
                             "schema": request.schema, "max_tokens": request.max_tokens or self.config.max_tokens,
                             "temperature": self.config.temperature, "repeat_penalty": self.config.repeat_penalty})
            except OSError as e:
                self._stop_worker()
                return "error", None, None, {"error": f"llm worker unreachable: {e}"}
            while True:
                remaining = deadline - self.clock.monotonic()
                try:
                    if remaining <= 0:
                        raise queue.Empty
                    reply = worker.replies.get(timeout=remaining)
                except queue.Empty:  # past the deadline: abandon the call for real
                    self._stop_worker()
                    return "timeout", None, None, {
                        "error": f"no answer within timeout_s={self.config.timeout_s}; worker killed"}
                if reply is None:
                    self._stop_worker()
                    return "error", None, None, {"error": f"llm worker died (exit {worker.proc.returncode})"}
                if reply.get("id") == req_id:
                    break
            extra = {k: reply.get(k) for k in ("prompt_tokens", "completion_tokens", "infer_s")}
            if reply.get("type") == "error":
                return "error", None, None, {**extra, "error": reply.get("error")}
            text = reply.get("text", "")
            try:
                value = request.output.model_validate_json(text)
            except ValidationError as e:
                return "invalid_output", None, text, {**extra, "error": _validation_message(e)}
            return "ok", value, text, extra
        finally:
            self._lock.release()
