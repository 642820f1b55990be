"""HTTP client of the daemon's local API: what the CLI reads and changes state through (one writer)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from samantha.core.config import SamanthaConfig

RUN_FILE = "daemon.json"  # under data_dir: pid and URL of the running daemon


class DaemonNotRunning(Exception):
    def __init__(self, url: str, detail: str):
        self.url = url
        super().__init__(f"the daemon is not running at {url} ({detail}); start it with `samantha run`")


class DaemonError(Exception):
    def __init__(self, status: int, code: str, reason: str, field: str | None = None):
        self.status, self.code, self.reason, self.field = status, code, reason, field
        super().__init__(f"{status} {code}: {reason}" + (f" (field {field})" if field else ""))


def run_file(config: SamanthaConfig) -> Path:
    return Path(config.data_dir) / RUN_FILE


def daemon_url(config: SamanthaConfig) -> str:
    """The configured address; with port 0 the one the running daemon wrote to its run file."""
    if config.api.port:
        return f"http://{config.api.host}:{config.api.port}"
    try:
        return json.loads(run_file(config).read_text())["url"]
    except (OSError, ValueError, KeyError):
        return f"http://{config.api.host}:0"


TOKEN_ENV = "SAMANTHA_TOKEN"


class DaemonClient:
    """`token`: an operator token; else $SAMANTHA_TOKEN; else the daemon's local token file (re-read per call,
    since the daemon writes a fresh one at every start)."""

    def __init__(self, base_url: str, *, timeout: float = 5.0, token: str | None = None,
                 token_file: Path | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(timeout=timeout)
        self.token, self.token_file = token or os.environ.get(TOKEN_ENV) or None, token_file

    @classmethod
    def from_config(cls, config: SamanthaConfig, **kw: Any) -> DaemonClient:
        kw.setdefault("token_file", Path(config.data_dir) / "api.token")
        return cls(daemon_url(config), **kw)

    def headers(self) -> dict[str, str]:
        token = self.token
        if token is None and self.token_file is not None:
            try:
                token = self.token_file.read_text().strip() or None
            except OSError:
                token = None
        return {"Authorization": f"Bearer {token}"} if token else {}

    def get_raw(self, path: str, **params: Any) -> bytes:
        try:
            r = self._http.get(self.base_url + path, params={k: v for k, v in params.items() if v is not None},
                               headers=self.headers())
        except httpx.HTTPError as e:
            raise DaemonNotRunning(self.base_url, f"{type(e).__name__}") from None
        if r.status_code >= 400:
            self._raise(r)
        return r.content

    @staticmethod
    def _raise(r: httpx.Response) -> None:
        try:
            body = r.json()
        except ValueError:
            body = None
        err = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
        raise DaemonError(r.status_code, err.get("code", "http_error"), err.get("reason", r.text[:200]),
                          err.get("field"))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DaemonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, **params: Any) -> Any:
        try:
            r = self._http.get(self.base_url + path, params={k: v for k, v in params.items() if v is not None},
                               headers=self.headers())
        except httpx.HTTPError as e:
            raise DaemonNotRunning(self.base_url, f"{type(e).__name__}") from None
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code >= 400:
            err = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
            raise DaemonError(r.status_code, err.get("code", "http_error"), err.get("reason", r.text[:200]),
                              err.get("field"))
        return body

    def status(self) -> dict[str, Any]:
        return self.get("/v1/status")

    def incidents(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return self.get("/v1/incidents", status=status, limit=limit)["incidents"]

    def actions(self, status: str | None = None, kind: str | None = None, incident: str | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
        return self.get("/v1/actions", status=status, kind=kind, incident=incident, limit=limit)["actions"]

    def gates(self) -> dict[str, Any]:
        return self.get("/v1/gates")


def auth_headers(config: SamanthaConfig) -> dict[str, str]:
    """The Authorization header a CLI command sends: $SAMANTHA_TOKEN, else the daemon's local token."""
    token = os.environ.get(TOKEN_ENV)
    if not token:
        try:
            token = (Path(config.data_dir) / "api.token").read_text().strip()
        except OSError:
            token = None
    return {"Authorization": f"Bearer {token}"} if token else {}


def writer_headers(config: SamanthaConfig, writer: str = "router") -> dict[str, str]:
    """Headers of a telemetry writer on this host: its machine credential from its token file."""
    from samantha.api.writers import token_path
    from samantha.core.writer_tokens import ensure_token_file

    return {"Authorization": f"Bearer {ensure_token_file(Path(token_path(config, writer)))}",
            "Content-Type": "application/x-ndjson"}
