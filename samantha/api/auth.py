"""Operator authentication and authorisation for the local API and the web console.

- A token (`Authorization: Bearer <token>`) maps to an operator and a role from the
  trusted-operators file (`samantha/core/operators.py`); the console trades a token for a
  session cookie (HttpOnly, SameSite=Strict) with a per-session CSRF token.
- `AuthMiddleware` guards every route, including routers other parts mount: GET/HEAD need
  viewer, anything else needs the role in `MUTATION_ROLES` (admin when no rule matches).
  Only `/healthz`, the login page and static files are public. Telemetry ingest is a machine
  path: it takes a writer credential (`samantha/api/writers.py`), never an operator token. `require(role)` lets a handler
  get the operator and state its role in code as well.
- Missing/unknown token: 401. Known operator, insufficient role: 403. Failed logins per
  client address are rate-limited (429 + Retry-After) with the sliding-window limiter.
- `check_binding()`: loopback unless TLS cert and key are configured; refuses otherwise.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from samantha.api import metrics
from samantha.api.writers import WRITER_TABLES, WriterAuth, writer_table
from samantha.core.clock import REAL_CLOCK, Clock
from samantha.core.config import ApiConfig, SamanthaConfig, is_loopback
from samantha.core.operators import OperatorsFile, Role, load_operators
from samantha.kernel.ratelimit import SlidingWindowLimiter
from samantha.telemetry.schema import ANONYMOUS_WRITER

log = logging.getLogger("samantha.api.auth")

SESSION_COOKIE = "samantha_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
LOCAL_TOKEN_FILE = "api.token"
LOCAL_OPERATOR = "local-cli"
MAX_FORM_BYTES = 64 * 1024

PUBLIC_PREFIXES = ("/console/static/",)
PUBLIC_PATHS = ("/", "/healthz", "/console/login")
# (method, path prefix, minimum role) for mutations; first match wins, default admin.
MUTATION_ROLES: list[tuple[str, str, Role]] = [
    ("POST", "/console/logout", Role.viewer),
    ("POST", "/v1/approvals/", Role.approver),
    ("POST", "/v1/chaos/approvals/", Role.approver),  # approve/deny; every other chaos mutation is admin
    ("POST", "/v1/chaos/gates", Role.viewer),  # evaluates gates (the experiment probes): changes nothing
    ("POST", "/console/approvals/", Role.approver),
]


class AuthError(Exception):
    def __init__(self, status: int, code: str, reason: str, retry_after: float | None = None) -> None:
        self.status, self.code, self.reason, self.retry_after = status, code, reason, retry_after
        super().__init__(reason)


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    via: str  # token | session | local

    @property
    def role_name(self) -> str:
        return self.role.name


@dataclass
class Session:
    principal: Principal
    csrf: str
    expires: float


@dataclass
class AuthService:
    """Operators (re-read when the file changes), sessions, and the failed-login limiter."""

    operators_path: Path
    api: ApiConfig
    clock: Clock = REAL_CLOCK
    local_token: str | None = None
    writers: WriterAuth | None = None  # telemetry writers' credentials; None: ingest refused
    _ops: OperatorsFile = field(default_factory=OperatorsFile)
    _mtime: float | None = None
    _sessions: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    limiter: SlidingWindowLimiter = field(init=False)
    # told of every refused mutation (method, path, operator or None, error): the console audits decision attempts
    refusal_hooks: list[Any] = field(default_factory=list)

    def refused(self, method: str, path: str, who: Principal | None, e: AuthError) -> None:
        if method in ("GET", "HEAD", "OPTIONS"):
            return
        for hook in self.refusal_hooks:
            try:
                hook(method, path, who, e)
            except Exception:  # recording a refusal must never turn it into a 500
                log.exception("refusal hook failed for %s %s", method, path)

    def __post_init__(self) -> None:
        self.limiter = SlidingWindowLimiter(self.api.login_max_failures, self.api.login_window_s, self.clock)
        self.reload()

    @classmethod
    def from_config(cls, config: SamanthaConfig, clock: Clock = REAL_CLOCK, *, write_local_token: bool = True
                    ) -> AuthService:
        svc = cls(operators_path=config.resolve(config.api.operators_file), api=config.api, clock=clock,
                  writers=WriterAuth(config, clock, open_ingest=config.api.open_ingest_on_loopback
                                     and is_loopback(config.api.host)))
        if config.api.local_token and write_local_token:
            svc.local_token = write_token_file(local_token_path(config))
        return svc

    def reload(self) -> None:
        """Pick up edits to the operators file; a broken edit keeps the last good set (and logs why)."""
        try:
            mtime = self.operators_path.stat().st_mtime
        except OSError:
            mtime = None
        if mtime == self._mtime and self._mtime is not None:
            return
        try:
            ops = load_operators(self.operators_path)
        except ValueError as e:
            log.error("operators file %s refused, keeping the previous one: %s", self.operators_path, e)
            return
        with self._lock:
            self._ops, self._mtime = ops, mtime

    @property
    def operators(self) -> OperatorsFile:
        self.reload()
        return self._ops

    # ---- tokens ----
    def authenticate(self, token: str | None, client: str) -> Principal:
        """The operator behind `token`; AuthError 401 (missing/unknown) or 429 (too many failures)."""
        if not token:
            raise AuthError(401, "unauthenticated", "no operator token: send 'Authorization: Bearer <token>' "
                            "(or log in to the console); tokens are issued with `samantha auth add`")
        # the local token (256 random bits in a 0600 file) first: guessing on the network must not lock the CLI out
        if self.local_token is not None and secrets.compare_digest(token.encode(), self.local_token.encode()):
            return Principal(LOCAL_OPERATOR, Role.admin, "local")
        if not self.limiter.check(client):
            metrics.login("rate_limited")
            raise AuthError(429, "rate_limited", f"too many failed logins from {client}; retry later",
                            retry_after=self.limiter.retry_after(client))
        op = self.operators.by_token(token)
        if op is not None and op.expired(self.clock.time()):
            self.limiter.hit(client)
            metrics.login("failed")
            raise AuthError(401, "expired", f"operator {op.name} expired (expires_at in the operators file)")
        if op is None:
            self.limiter.hit(client)
            metrics.login("failed")
            raise AuthError(401, "bad_token", "the token matches no trusted operator")
        return Principal(op.name, op.level, "token")

    def authenticate_writer(self, token: str | None, table: str, client: str) -> str:
        """The writer's name for an ingest request; AuthError 401/403/429 with the reason."""
        w = self.writers
        if not token:
            if w is not None and w.open_ingest:
                return ANONYMOUS_WRITER
            raise AuthError(401, "unauthenticated", "telemetry ingest needs a writer credential: send "
                            "'Authorization: Bearer <token>' with a token of api.writers (e.g. "
                            "<data_dir>/writers/router.token)")
        if not self.limiter.check(client):
            raise AuthError(429, "rate_limited", f"too many failed credentials from {client}; retry later",
                            retry_after=self.limiter.retry_after(client))
        found = w.authenticate(token) if w is not None else None
        if found is None:
            if self._is_operator(token):  # a real credential in the wrong place, not a guess
                raise AuthError(403, "forbidden", "an operator token cannot write telemetry: ingest takes a "
                                "writer credential (api.writers)")
            self.limiter.hit(client)
            raise AuthError(401, "bad_token", "the token matches no telemetry writer (api.writers)")
        if table in WRITER_TABLES and table not in found.tables:
            raise AuthError(403, "forbidden", f"writer {found.name} may write {', '.join(found.tables)}, "
                            f"not {table} (api.writers.{found.name}.tables)")
        return found.name

    def _is_operator(self, token: str) -> bool:
        if self.local_token is not None and secrets.compare_digest(token.encode(), self.local_token.encode()):
            return True
        return self.operators.by_token(token) is not None

    # ---- sessions ----
    def login(self, token: str | None, client: str) -> tuple[str, Session]:
        p = self.authenticate(token, client)
        metrics.login("ok")
        sid = secrets.token_urlsafe(32)
        s = Session(Principal(p.name, p.role, "session"), secrets.token_urlsafe(24),
                    self.clock.time() + self.api.session_ttl_s)
        with self._lock:
            now = self.clock.time()
            for k in [k for k, v in self._sessions.items() if v.expires <= now]:
                del self._sessions[k]
            self._sessions[sid] = s
        return sid, s

    def session(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self._lock:
            s = self._sessions.get(sid)
            if s is None or s.expires <= self.clock.time():
                self._sessions.pop(sid, None)
                return None
        # a session outlives neither its operator's removal nor a role change
        if s.principal.name != LOCAL_OPERATOR:
            op = self.operators.by_name(s.principal.name)
            if op is None or op.level != s.principal.role or op.expired(self.clock.time()):
                self.logout(sid)
                return None
        return s

    def logout(self, sid: str | None) -> None:
        if sid:
            with self._lock:
                self._sessions.pop(sid, None)


def local_token_path(config: SamanthaConfig) -> Path:
    return Path(config.data_dir) / LOCAL_TOKEN_FILE


def write_token_file(path: Path) -> str:
    """A fresh local token, readable by the owner only (written 0600 from the start)."""
    from samantha.core.operators import new_token

    token = new_token()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.replace(tmp, path)
    return token


def read_token_file(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


# ---- policy ----
def required_role(method: str, path: str) -> Role | None:
    """None: public. Reads need viewer; mutations the first matching rule, else admin."""
    if path in PUBLIC_PATHS or any(path.startswith(p) for p in PUBLIC_PREFIXES):
        return None
    if method in ("GET", "HEAD", "OPTIONS"):
        return Role.viewer
    for m, prefix, role in MUTATION_ROLES:
        if method == m and path.startswith(prefix):
            return role
    return Role.admin


def principal(request: Request) -> Principal:
    p = getattr(request.state, "principal", None)
    if p is None:
        raise AuthError(401, "unauthenticated", "no operator on this request")
    return p


def require(role: str | Role) -> Any:
    """FastAPI dependency: the authenticated operator, with at least `role`."""
    need = role if isinstance(role, Role) else Role[role]

    def dep(request: Request) -> Principal:
        p = principal(request)
        if p.role < need:
            raise AuthError(403, "forbidden", f"operator {p.name} has role {p.role.name}; "
                            f"{request.method} {request.url.path} needs {need.name}")
        return p

    return dep


def _bearer(headers: dict[str, str]) -> str | None:
    h = headers.get("authorization", "")
    if h[:7].lower() == "bearer ":
        return h[7:].strip() or None
    return None


def _cookie(headers: dict[str, str], name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


def error_response(e: AuthError, path: str) -> Response:
    headers = {}
    if e.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(e.retry_after)))
    if e.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="samantha"'
    if path.startswith("/console/"):
        if e.status == 401:
            return RedirectResponse(f"/console/login?next={quote(path)}", status_code=303)
        body = (f"<!doctype html><html lang=en><title>{e.status}</title><link rel=stylesheet href=/console/static/console.css>"
                f"<main><h1>{e.status} {e.code.replace('_', ' ')}</h1><p class=reason>{_esc(e.reason)}</p>"
                f"<p><a href=/console/>back</a></p></main>")
        return HTMLResponse(body, status_code=e.status, headers=headers)
    return JSONResponse({"error": {"code": e.code, "reason": e.reason, "field": None}}, status_code=e.status,
                        headers=headers)


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class AuthMiddleware:
    """Pure ASGI, so a form body read for the CSRF check is replayed to the handler intact."""

    def __init__(self, app: ASGIApp, service: AuthService) -> None:
        self.app, self.svc = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        need = required_role(method, path)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        client = (scope.get("client") or ("?", 0))[0]
        scope.setdefault("state", {})
        table = writer_table(path) if method == "POST" else None
        if table is not None:  # a machine path: a writer credential, never an operator's
            try:
                scope["state"].update(writer=self.svc.authenticate_writer(_bearer(headers), table, client),
                                      principal=None, session=None)
            except AuthError as e:
                await error_response(e, path)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if need is None:  # public: an operator is attached when one is identifiable, never required
            try:
                p, sess = self._identify(headers, client)
            except AuthError:
                p, sess = None, None
            scope["state"].update(principal=p, session=sess)
            await self.app(scope, receive, send)
            return
        try:
            p, sess = self._identify(headers, client)
            scope["state"].update(principal=p, session=sess)
            if p is None:
                raise AuthError(401, "unauthenticated", "no operator token: send 'Authorization: Bearer <token>' "
                                "(or log in to the console); tokens are issued with `samantha auth add`")
            if p.role < need:
                raise AuthError(403, "forbidden", f"operator {p.name} has role {p.role.name}; "
                                f"{method} {path} needs {need.name}")
            if sess is not None and method not in ("GET", "HEAD", "OPTIONS"):
                receive = await self._check_csrf(headers, receive, sess)
        except AuthError as e:
            self.svc.refused(method, path, scope["state"].get("principal"), e)
            await error_response(e, path)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _identify(self, headers: dict[str, str], client: str) -> tuple[Principal | None, Session | None]:
        token = _bearer(headers)
        if token is not None:  # an explicit token wins over a cookie, and a bad one is an error
            return self.svc.authenticate(token, client), None
        sess = self.svc.session(_cookie(headers, SESSION_COOKIE))
        return (sess.principal, sess) if sess is not None else (None, None)

    async def _check_csrf(self, headers: dict[str, str], receive: Receive, sess: Session) -> Receive:
        """Cookie-authenticated mutation: the session's CSRF token in the header or the form."""
        sent = headers.get(CSRF_HEADER)
        chunks: list[bytes] = []
        if sent is None and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            size = 0
            while True:
                msg = await receive()
                body = msg.get("body", b"")
                size += len(body)
                if size > MAX_FORM_BYTES:
                    raise AuthError(413, "too_large", f"form body is larger than {MAX_FORM_BYTES} bytes")
                chunks.append(body)
                if not msg.get("more_body"):
                    break
            sent = (parse_qs(b"".join(chunks).decode("utf-8", "replace")).get(CSRF_FIELD) or [None])[0]
        if not sent or not secrets.compare_digest(sent.encode(), sess.csrf.encode()):
            raise AuthError(403, "csrf", "missing or wrong CSRF token: reload the page and submit the form again")
        if not chunks:
            return receive
        replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed() -> Message:
            return replay.pop(0) if replay else await receive()

        return replayed


def install(app: Any, service: AuthService) -> None:
    """Guard `app`: the middleware, plus a handler so `require()` failures answer like the middleware."""
    app.add_middleware(AuthMiddleware, service=service)
    app.state.auth = service

    @app.exception_handler(AuthError)
    async def _auth_error(request: Request, exc: AuthError) -> Response:
        service.refused(request.method, request.url.path, getattr(request.state, "principal", None), exc)
        return error_response(exc, request.url.path)


# ---- binding ----
class BindRefused(Exception):
    pass


def check_binding(config: SamanthaConfig) -> dict[str, Any]:
    """uvicorn TLS kwargs for `api.host`; BindRefused when a non-loopback bind lacks TLS files."""
    api = config.api
    if api.open_ingest_on_loopback and not is_loopback(api.host):
        raise BindRefused(f"api.open_ingest_on_loopback is set but api.host {api.host} is not loopback: "
                          "unauthenticated ingest would face the network; unset it (writers use api.writers "
                          "credentials) or bind 127.0.0.1")
    if is_loopback(api.host):
        if api.tls_cert and api.tls_key:
            return {"ssl_certfile": str(config.resolve(api.tls_cert)), "ssl_keyfile": str(config.resolve(api.tls_key))}
        return {}
    missing = [n for n in ("tls_cert", "tls_key") if not getattr(api, n)]
    if missing:
        raise BindRefused(f"api.host {api.host} is not loopback: binding it needs TLS; set api.{' and api.'.join(missing)} "
                          "(PEM files) or bind 127.0.0.1")
    cert, key = config.resolve(api.tls_cert or ""), config.resolve(api.tls_key or "")
    for name, p in (("api.tls_cert", cert), ("api.tls_key", key)):
        if not p.is_file():
            raise BindRefused(f"{name}: {p} does not exist or is not a file")
    log.warning("!!! the Samantha API is listening on %s, beyond loopback, with TLS (%s). Every operator "
                "token in %s now guards this Cube over the network. !!!", api.host, cert, api.operators_file)
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
