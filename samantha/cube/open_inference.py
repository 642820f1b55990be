"""The Open Inference Protocol (KServe V2 over HTTP) data path: answers read, checked and compared.

Triton, OpenVINO Model Server and MLServer speak it. A request passes through unchanged; the
answer is read against the model metadata taken at load (`/v2/models/{m}`), so an output whose
name, shape or datatype changed is an error, as is a NaN or an Inf. Shadow divergence is per
output tensor: total variation distance for probability outputs, otherwise a normalised
distance raised to 1 when the argmax disagrees; the worst tensor is the request's divergence.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import orjson

INFER_SUFFIX = "/infer"
_DTYPES = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "BOOL"}


class OpenInferenceError(ValueError):
    """An answer or metadata document that does not fit the protocol or the model's contract; names the field."""

    def __init__(self, field: str, reason: str):
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


class UpstreamFailure(Exception):
    """The slot did not answer (refused, reset, timed out); the base of every upstream client's error."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]  # -1 is a variable dimension


def read_metadata(doc: Any) -> tuple[TensorSpec, ...]:
    """The outputs of a `/v2/models/{m}` answer; OpenInferenceError names the bad field."""
    if not isinstance(doc, dict) or not isinstance(doc.get("outputs"), list) or not doc["outputs"]:
        raise OpenInferenceError("outputs", "model metadata lists no outputs")
    specs = []
    for i, o in enumerate(doc["outputs"]):
        if not isinstance(o, dict) or not isinstance(o.get("name"), str):
            raise OpenInferenceError(f"outputs[{i}].name", "missing")
        if o.get("datatype") not in _DTYPES:
            raise OpenInferenceError(f"outputs[{i}].datatype", f"not a numeric datatype: {o.get('datatype')!r}")
        shape = o.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
            raise OpenInferenceError(f"outputs[{i}].shape", f"not a list of integers: {shape!r}")
        specs.append(TensorSpec(o["name"], o["datatype"], tuple(shape)))
    return tuple(specs)


def _shape_fits(shape: tuple[int, ...], spec: tuple[int, ...]) -> bool:
    return len(shape) == len(spec) and all(s == -1 or s == d for d, s in zip(shape, spec, strict=True))


def parse_answer(data: bytes, expected: tuple[TensorSpec, ...] | None) -> dict[str, np.ndarray]:
    """The output tensors of an infer answer, checked against the metadata read at load."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        try:  # some servers write bare NaN/Infinity tokens, which strict JSON refuses
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise OpenInferenceError("body", "answer is not JSON") from None
    outs = doc.get("outputs") if isinstance(doc, dict) else None
    if not isinstance(outs, list) or not outs:
        raise OpenInferenceError("outputs", "answer carries no outputs")
    tensors: dict[str, np.ndarray] = {}
    for i, o in enumerate(outs):
        try:
            name, dtype, shape = o["name"], o["datatype"], tuple(int(d) for d in o["shape"])
            arr = np.asarray([np.nan if v is None else v for v in o["data"]], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            raise OpenInferenceError(f"outputs[{i}]", "needs name, datatype, shape and numeric data") from None
        if arr.size != int(np.prod(shape)):
            raise OpenInferenceError(f"outputs[{i}].data", f"{arr.size} values for shape {list(shape)}")
        if not np.all(np.isfinite(arr)):
            raise OpenInferenceError(f"outputs[{i}].data", "model produced a non-finite output (NaN or Inf)")
        tensors[name] = arr.reshape(shape)
        tensors[name].flags.writeable = False
        if expected is not None:
            spec = next((s for s in expected if s.name == name), None)
            if spec is None:
                raise OpenInferenceError(f"outputs[{i}].name", f"{name!r} is not an output of the loaded model")
            if dtype != spec.datatype:
                raise OpenInferenceError(f"outputs[{i}].datatype", f"{dtype}, the model declares {spec.datatype}")
            if not _shape_fits(shape, spec.shape):
                raise OpenInferenceError(f"outputs[{i}].shape", f"{list(shape)}, the model declares {list(spec.shape)}")
    return tensors


def is_probability(a: np.ndarray) -> bool:
    return a.size > 1 and bool(np.all(a >= -1e-6)) and bool(np.allclose(a.sum(axis=-1), 1.0, atol=1e-3))


def tensor_divergence(p: np.ndarray, q: np.ndarray | None) -> float:
    """In [0, 1]: TV distance for probabilities, else max(normalised distance, argmax disagreement)."""
    if q is None or p.shape != q.shape:
        return 1.0
    if is_probability(p) and is_probability(q):
        return float(min(1.0, 0.5 * np.abs(p - q).sum(axis=-1).max()))
    denom = float(np.linalg.norm(p) + np.linalg.norm(q))
    dist = 0.0 if denom == 0 else float(np.linalg.norm(p - q)) / denom
    agree = p.size <= 1 or np.array_equal(np.argmax(p.reshape(-1, p.shape[-1]), -1),
                                         np.argmax(q.reshape(-1, q.shape[-1]), -1))
    return min(1.0, max(dist, 0.0 if agree else 1.0))


def divergence(live: dict[str, np.ndarray], shadow: dict[str, np.ndarray] | None) -> float:
    """The worst output tensor's divergence; a missing tensor or answer is 1."""
    if shadow is None or set(live) != set(shadow):
        return 1.0
    return max(tensor_divergence(v, shadow[k]) for k, v in live.items())


def _failure(e: httpx.HTTPError) -> UpstreamFailure:
    return UpstreamFailure(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)


class HttpxUpstream:
    """A keep-alive httpx client with the router's upstream interface (status, body, elapsed seconds)."""

    def __init__(self, base_url: str, *, max_connections: int = 64):
        self.base_url = base_url.rstrip("/")
        self.client = httpx.AsyncClient(base_url=self.base_url, http1=True,
                                        limits=httpx.Limits(max_connections=max_connections,
                                                            max_keepalive_connections=max_connections))

    async def timed_request(self, method: str, path: str, body: bytes = b"", *, timeout: float = 5.0,
                            headers: dict[str, str] | None = None) -> tuple[int, bytes, float]:
        t0 = time.perf_counter()
        try:
            r = await self.client.request(method, path, content=body or None, timeout=timeout,
                                          headers={"content-type": "application/json", **(headers or {})})
        except httpx.HTTPError as e:
            raise _failure(e) from None
        return r.status_code, r.content, time.perf_counter() - t0

    @contextlib.asynccontextmanager
    async def stream(self, method: str, path: str, body: bytes = b"", *, timeout: float = 5.0
                     ) -> AsyncIterator[tuple[int, AsyncIterator[bytes]]]:
        """(status, the answer's chunks as they arrive); `timeout` bounds each wait, not the whole answer."""
        req = self.client.build_request(method, path, content=body or None, timeout=timeout,
                                        headers={"content-type": "application/json"})
        try:
            r = await self.client.send(req, stream=True)
        except httpx.HTTPError as e:
            raise _failure(e) from None
        try:
            yield r.status_code, _chunks(r)
        finally:
            await r.aclose()

    async def request(self, method: str, path: str, body: bytes = b"", *, timeout: float = 5.0) -> tuple[int, bytes]:
        status, data, _ = await self.timed_request(method, path, body, timeout=timeout)
        return status, data

    async def aclose(self) -> None:
        await self.client.aclose()


async def _chunks(r: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for c in r.aiter_bytes():
            yield c
    except httpx.HTTPError as e:
        raise _failure(e) from None


class OpenInferenceProtocol:
    """The router's data-path hooks for V2: which paths are inference, how an answer is read and compared."""

    def matches(self, path: str) -> bool:
        return path.startswith("/v2/models/") and path.endswith(INFER_SUFFIX)

    def parse(self, data: bytes, contract: tuple[TensorSpec, ...] | None) -> tuple[Any, str | None, float | None]:
        try:
            return parse_answer(data, contract), None, None
        except OpenInferenceError as e:
            raise ValueError(str(e)) from None

    def compare(self, live: dict[str, np.ndarray], shadow: dict[str, np.ndarray] | None) -> float:
        return divergence(live, shadow)
