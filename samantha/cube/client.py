"""HTTP client for a Cube's control API (the twin's, or a real Cube's)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from samantha.cube.protocol import CubeError, CubeState, MutationResult


def new_request_id(prefix: str = "req") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


class CubeClient:
    """Implements `CubeRuntime` against `base_url` (e.g. http://127.0.0.1:8481)."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, client: httpx.Client | None = None):
        self.base_url = base_url.rstrip("/")
        self._http = client or httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check(self, r: httpx.Response) -> Any:
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code >= 400:
            err = (body or {}).get("error", {}) if isinstance(body, dict) else {}
            raise CubeError(r.status_code, err.get("code", "http_error"), err.get("reason", r.text[:200]), err.get("field"))
        return body

    def _post(self, op: str, payload: dict[str, Any]) -> MutationResult:
        try:
            r = self._http.post(f"{self.base_url}/v1/{op}", json=payload)
        except httpx.HTTPError as e:
            raise CubeError(0, "unreachable", f"{type(e).__name__}: {e}") from None
        return MutationResult.model_validate(self._check(r))

    def state(self) -> CubeState:
        try:
            r = self._http.get(f"{self.base_url}/v1/state")
        except httpx.HTTPError as e:
            raise CubeError(0, "unreachable", f"{type(e).__name__}: {e}") from None
        return CubeState.model_validate(self._check(r))

    def load(self, bundle: str, *, request_id: str) -> MutationResult:
        return self._post("load", {"request_id": request_id, "bundle": bundle})

    def set_weights(self, standby: float, *, request_id: str) -> MutationResult:
        return self._post("weights", {"request_id": request_id, "standby": standby})

    def flip(self, *, request_id: str) -> MutationResult:
        return self._post("flip", {"request_id": request_id})

    def set_shadow(self, enabled: bool, *, request_id: str) -> MutationResult:
        return self._post("shadow", {"request_id": request_id, "enabled": enabled})

    def quarantine(self, bundle_id: str, *, reason: str, request_id: str) -> MutationResult:
        return self._post("quarantine", {"request_id": request_id, "bundle_id": bundle_id, "reason": reason})

    def release(self, bundle_id: str, *, request_id: str) -> MutationResult:
        return self._post("release", {"request_id": request_id, "bundle_id": bundle_id})

    def safe_mode(self, enabled: bool, *, request_id: str) -> MutationResult:
        return self._post("safe-mode", {"request_id": request_id, "enabled": enabled})
