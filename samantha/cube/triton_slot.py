"""The `triton-repository` slot adapter: one Triton server in explicit model control per slot.

Load = verify the signed bundle and its repository entry, place the verified bytes in the slot's
repository, `POST /v2/repository/models/{m}/load`, wait (bounded) for `/v2/models/{m}/ready`,
read the model metadata (the output contract the router checks answers against), warm up. Any
failure raises SlotLoadError naming the field or Triton's answer; the control API then leaves
the slot marked empty, and the active slot is never touched. Health is `/v2/health/ready` plus
the model's own ready endpoint.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from samantha.cube.bundle import TrustedKey, VerifiedBundle, load_trusted_keys
from samantha.cube.open_inference import OpenInferenceError, TensorSpec, read_metadata
from samantha.cube.slot_adapter import Loaded, SlotLoadError
from samantha.cube.triton_bundle import place, verify_triton_bundle

WARMUP_REQUESTS = 4


def _warmup_body(doc: dict[str, Any]) -> dict[str, Any] | None:
    """Zeros for every declared input with fixed dims (None when a dim is variable: no warm-up then)."""
    inputs = []
    for i in doc.get("inputs") or []:
        shape = i.get("shape") or []
        if any(not isinstance(d, int) or d < 0 for d in shape):
            return None
        n = 1
        for d in shape:
            n *= d
        inputs.append({"name": i["name"], "shape": shape, "datatype": i["datatype"],
                       "data": [False] * n if i["datatype"] == "BOOL" else [0] * n})
    return {"inputs": inputs} if inputs else None


class TritonRepositorySlot:
    def __init__(self, url: str, repository: Path, trusted_path: Path, *, ready_timeout_s: float = 60.0):
        self.url = url.rstrip("/")
        self.repository = Path(repository)
        self.trusted_path = trusted_path
        self.ready_timeout_s = ready_timeout_s
        self.model: str | None = None
        self.contract: tuple[TensorSpec, ...] | None = None
        self.http = httpx.AsyncClient(base_url=self.url, timeout=10.0)

    def _trusted(self) -> dict[str, TrustedKey]:
        return load_trusted_keys(self.trusted_path)

    def verify(self, path: Path) -> VerifiedBundle:
        return verify_triton_bundle(path, self._trusted())

    async def load(self, vb: VerifiedBundle) -> Loaded:
        self.model, self.contract = None, None  # from here on the slot counts as empty until ready
        try:
            model = place(vb, self.repository)
        except OSError as e:
            raise SlotLoadError("slot_io", f"cannot write the repository entry in {self.repository}: {e}",
                                status=503) from None
        try:
            r = await self.http.post(f"/v2/repository/models/{model}/load", timeout=self.ready_timeout_s)
        except httpx.HTTPError as e:
            raise SlotLoadError("slot_unavailable", f"Triton at {self.url} did not answer the load: "
                                f"{type(e).__name__}: {e}", status=503) from None
        if r.status_code != 200:
            raise SlotLoadError("triton_refused", f"Triton refused to load {model}: {_error_text(r)}")
        meta = await self._wait_ready(model)
        try:
            contract = read_metadata(meta)
        except OpenInferenceError as e:
            raise SlotLoadError("bad_metadata", f"model {model} metadata: {e}") from None
        body = _warmup_body(meta)
        for _ in range(WARMUP_REQUESTS if body else 0):
            w = await self.http.post(f"/v2/models/{model}/infer", json=body)
            if w.status_code != 200:
                break  # a defective bundle may fail here; judging it is the canary's job, not the load's
        self.model, self.contract = model, contract
        return Loaded(path=f"/v2/models/{model}/infer", contract=contract,
                      detail=", ".join(f"{s.name} {s.datatype}{list(s.shape)}" for s in contract))

    async def _wait_ready(self, model: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.ready_timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                r = await self.http.get(f"/v2/models/{model}/ready", timeout=2.0)
                if r.status_code == 200:
                    return (await self.http.get(f"/v2/models/{model}", timeout=2.0)).json()
                last = f"ready answered {r.status_code}"
            except (httpx.HTTPError, ValueError) as e:
                last = f"{type(e).__name__}: {e}"
            await asyncio.sleep(0.1)
        raise SlotLoadError("never_ready", f"model {model} not ready within {self.ready_timeout_s:.0f} s ({last})",
                            status=503)

    async def health(self) -> tuple[bool, str | None]:
        try:
            r = await self.http.get("/v2/health/ready", timeout=2.0)
            if r.status_code != 200:
                return False, f"Triton not ready ({r.status_code})"
            if self.model is None:
                return False, "no model loaded"
            m = await self.http.get(f"/v2/models/{self.model}/ready", timeout=2.0)
            return (True, None) if m.status_code == 200 else (False, f"model {self.model} not ready ({m.status_code})")
        except httpx.HTTPError as e:
            return False, f"Triton at {self.url} does not answer: {type(e).__name__}: {e}"

    async def close(self) -> None:
        await self.http.aclose()


def _error_text(r: httpx.Response) -> str:
    try:
        return str(r.json().get("error") or r.text)[:300]
    except ValueError:
        return r.text[:300] or f"HTTP {r.status_code}"
