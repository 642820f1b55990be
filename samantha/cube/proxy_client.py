"""A typed client for the Toxiproxy v2 API (Samantha's proxy or a real toxiproxy-server).

Same semantics as toxiproxy-python: creating an existing proxy or toxic raises
`AlreadyExists`, unknown names raise `NotFound`, bad input raises `InvalidRequest`; deletes
return whether something was deleted. Adds `ttl_s` on toxics; only Samantha's server
enforces it (`server_enforces_ttl`), so callers keep their own ledger for real Toxiproxy.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from samantha.core.config import ProxyConfig


class ProxyApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class NotFound(ProxyApiError):
    pass


class AlreadyExists(ProxyApiError):
    pass


class InvalidRequest(ProxyApiError):
    pass


class ToxicInfo(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any]
    expires_at: float | None = None


class ProxyInfo(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: list[ToxicInfo] = []

    @property
    def listen_port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    try:
        message = resp.json().get("error", resp.text)
    except ValueError:
        message = resp.text.strip()
    cls = {404: NotFound, 409: AlreadyExists, 400: InvalidRequest}.get(resp.status_code, ProxyApiError)
    raise cls(resp.status_code, message)


class ProxyClient:
    def __init__(self, base_url: str = "http://127.0.0.1:8474", *, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        # Samantha's own faults are validated strictly (a typo is refused, never reinterpreted);
        # a real toxiproxy-server ignores the header.
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers={"X-Samantha-Strict": "1"})

    @classmethod
    def from_config(cls, cfg: ProxyConfig, **kw: Any) -> ProxyClient:
        return cls(cfg.url, **kw)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ProxyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, json: Any = None) -> httpx.Response:
        resp = self._http.request(method, path, json=json)
        _raise_for(resp)
        return resp

    # --- server --------------------------------------------------------
    def version(self) -> dict[str, Any]:
        resp = self._call("GET", "/version")
        try:
            data = resp.json()
        except ValueError:  # Toxiproxy before 2.6 answers plain text
            return {"version": resp.text.strip()}
        return data if isinstance(data, dict) else {"version": str(data)}

    def server_enforces_ttl(self) -> bool:
        return self.version().get("server") == "samantha-proxy"

    def reset(self) -> None:
        """Re-enable every proxy and remove every toxic."""
        self._call("POST", "/reset")

    # --- proxies -------------------------------------------------------
    def proxies(self) -> dict[str, ProxyInfo]:
        return {k: ProxyInfo.model_validate(v) for k, v in self._call("GET", "/proxies").json().items()}

    def get_proxy(self, name: str) -> ProxyInfo | None:
        try:
            return ProxyInfo.model_validate(self._call("GET", f"/proxies/{name}").json())
        except NotFound:
            return None

    def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0",
                     enabled: bool = True) -> ProxyInfo:
        body = {"name": name, "upstream": upstream, "listen": listen, "enabled": enabled}
        return ProxyInfo.model_validate(self._call("POST", "/proxies", body).json())

    def populate(self, proxies: list[dict[str, Any]]) -> list[ProxyInfo]:
        """Create or replace proxies in one call (unchanged ones are kept, toxics and all)."""
        data = self._call("POST", "/populate", proxies).json()
        return [ProxyInfo.model_validate(p) for p in data.get("proxies") or []]

    def update_proxy(self, name: str, *, enabled: bool | None = None, listen: str | None = None,
                     upstream: str | None = None) -> ProxyInfo:
        body = {k: v for k, v in {"enabled": enabled, "listen": listen, "upstream": upstream}.items()
                if v is not None}
        return ProxyInfo.model_validate(self._call("POST", f"/proxies/{name}", body).json())

    def enable(self, name: str) -> ProxyInfo:
        return self.update_proxy(name, enabled=True)

    def disable(self, name: str) -> ProxyInfo:
        """Close the listener and every connection: the service behind looks down."""
        return self.update_proxy(name, enabled=False)

    def delete_proxy(self, name: str) -> bool:
        try:
            self._call("DELETE", f"/proxies/{name}")
        except NotFound:
            return False
        return True

    # --- toxics --------------------------------------------------------
    def toxics(self, proxy: str) -> list[ToxicInfo]:
        return [ToxicInfo.model_validate(t) for t in self._call("GET", f"/proxies/{proxy}/toxics").json()]

    def add_toxic(self, proxy: str, type: str, attributes: dict[str, Any] | None = None, *,
                  stream: str | None = None, toxicity: float = 1.0, name: str | None = None,
                  ttl_s: float | None = None) -> ToxicInfo:
        stream = stream or ("upstream" if type == "http_error" else "downstream")
        body: dict[str, Any] = {"name": name or f"{type}_{stream}", "type": type, "stream": stream,
                                "toxicity": toxicity, "attributes": dict(attributes or {})}
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        return ToxicInfo.model_validate(self._call("POST", f"/proxies/{proxy}/toxics", body).json())

    def update_toxic(self, proxy: str, name: str, attributes: dict[str, Any] | None = None, *,
                     toxicity: float | None = None, ttl_s: float | None = None) -> ToxicInfo:
        body: dict[str, Any] = {}
        if attributes is not None:
            body["attributes"] = attributes
        if toxicity is not None:
            body["toxicity"] = toxicity
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        return ToxicInfo.model_validate(self._call("POST", f"/proxies/{proxy}/toxics/{name}", body).json())

    def remove_toxic(self, proxy: str, name: str) -> bool:
        try:
            self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")
        except NotFound:
            return False
        return True
