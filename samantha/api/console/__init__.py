"""The web console: server-rendered pages (FastAPI + Jinja2), CSS and one small script from the package.

Pages: Status (live), Gates, Incidents (timeline SVG drawn from the store), Approval queue (list,
a decision-first detail page: the brief in plain words above the fold, raw documents collapsed;
approve/deny behind a confirmation page with a required reason), Experiments, Audit, and the token
login. Live parts are server-rendered fragments (`.../live`) that `static/console.js` polls and swaps
in (bounded, no library); without script the pages are complete as served. A web decision returns at
once: the experiment runs in the background and the approval page follows it to its end. Authorisation is the auth middleware's (`samantha/api/auth.py`): every
page needs a viewer session; deciding needs an approver; forms carry the session's CSRF token.

The pages read a `ConsoleView` (the API's `DaemonView`, plus the Cube key, the clock, the
uplink's status and the approval queue). Approvals come from its `approvals_port` (chaos
mode's queue; None without chaos mode). Web decisions are signed by the Cube key on the operator's behalf
(`sign_web_decision`); CLI decisions stay signed by the operator's own key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from samantha.api import metrics
from samantha.api.app import DaemonView
from samantha.api.auth import SESSION_COOKIE, AuthError, AuthService, Principal, require
from samantha.api.console.brief import approval_brief, outcome, pct, rollout_progress
from samantha.core.clock import Clock
from samantha.core.operators import Role
from samantha.core.signing import KeyPair, sign_document
from samantha.reporting import timeline
from samantha.reporting.incident_summary import summarize
from samantha.reporting.report import OPTIONAL_TABLES, _generic, fmt_secs, fmt_ts

HERE = Path(__file__).parent
DECISIONS = ("approve", "deny")


class ApprovalsPort(Protocol):
    """What the console needs from the approval queue (chaos mode)."""

    def list(self, limit: int) -> list[dict[str, Any]]: ...

    def get(self, approval_id: str) -> dict[str, Any] | None: ...

    def decide_signed(self, approval_id: str, decision: dict[str, Any]) -> dict[str, Any]: ...

    def progress(self, approval_id: str) -> dict[str, Any] | None: ...


class ConsoleView(DaemonView, Protocol):
    """What the console pages read from the daemon."""

    key: KeyPair
    clock: Clock
    approvals_port: ApprovalsPort | None

    def uplink_view(self) -> dict[str, Any]: ...

    def audit_event(self, kind: str, payload: dict[str, Any]) -> None: ...


def sign_web_decision(approval_id: str, decision: str, reason: str, operator: Principal, cube_key: KeyPair,
                      now: float) -> dict[str, Any]:
    """A decision made in the web UI: the operator's identity recorded, the Cube key signing for them."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, not {decision!r}")
    return sign_document({"approval_id": approval_id, "decision": decision, "reason": reason,
                          "operator": operator.name, "role": operator.role.name, "via": "web",
                          "signed_on_behalf_by": "cube", "ts": now}, cube_key)


def _provenance(spec: dict[str, Any]) -> str:
    p = spec.get("provenance") or spec.get("source") or spec.get("origin")
    if isinstance(p, dict):
        return ", ".join(f"{k}: {v}" for k, v in p.items())
    return str(p) if p else ("learned" if spec.get("learned") else "built-in / playbook")


def make_console_router(daemon: ConsoleView, auth: AuthService, read: Any, *, secure_cookie: bool = False
                        ) -> APIRouter:
    """`secure_cookie`: the session cookie is sent over HTTPS only (the API serves TLS)."""
    router = APIRouter(prefix="/console", include_in_schema=False)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["ts"] = fmt_ts
    templates.env.filters["secs"] = fmt_secs
    templates.env.globals["provenance"] = _provenance
    templates.env.globals["pct"] = pct
    viewer, approver = Depends(require("viewer")), Depends(require("approver"))

    def page(request: Request, name: str, title: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        sess = getattr(request.state, "session", None)
        who = getattr(request.state, "principal", None)
        return templates.TemplateResponse(request, name, {"title": title, "page": title, "who": who,
                                                          "csrf": sess.csrf if sess else "", **ctx},
                                          status_code=status)

    def approvals() -> ApprovalsPort | None:
        return daemon.approvals_port

    @router.get("/login")
    def login_form(request: Request, next: str = Query("/console/")) -> HTMLResponse:
        return page(request, "login.html.j2", "Log in", next=_safe_next(next), who=None)

    @router.post("/login")
    def login(request: Request, token: str = Form(""), next: str = Form("/console/")) -> Response:
        client = request.client.host if request.client else "?"
        try:
            sid, _ = auth.login(token.strip(), client)
        except AuthError as e:
            resp = page(request, "login.html.j2", "Log in", status=e.status, next=_safe_next(next), who=None,
                        error=e.reason)
            if e.retry_after is not None:
                resp.headers["Retry-After"] = str(max(1, int(e.retry_after + 0.999)))
            return resp
        resp = RedirectResponse(_safe_next(next), status_code=303)
        resp.set_cookie(SESSION_COOKIE, sid, max_age=int(auth.api.session_ttl_s), httponly=True, samesite="strict",
                        secure=secure_cookie, path="/")
        return resp

    @router.post("/logout")
    def logout(request: Request) -> Response:
        auth.logout(request.cookies.get(SESSION_COOKIE))
        resp = RedirectResponse("/console/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    def refused_attempt(method: str, path: str, who: Principal | None, e: AuthError) -> None:
        """Every refused decision attempt is in the audit log: forged CSRF, wrong role, no reason, not pending."""
        if path.startswith("/console/approvals/") and path.endswith("/decide"):
            daemon.audit_event("approval_refused", {"approval_id": path.split("/")[3], "code": e.code,
                                                    "reason": e.reason[:120], "status": e.status, "via": "web",
                                                    "operator": who.name if who else None})

    auth.refusal_hooks.append(refused_attempt)

    def headline(i: dict[str, Any]) -> str:
        """The incident's code-written summary; written now from its record when the loop has not yet."""
        return i.get("summary") or summarize(i, daemon.actions(None, None, i["id"], 50)).text

    def status_ctx() -> dict[str, Any]:
        st = daemon.status()
        now = daemon.clock.time()
        incidents = [{**i, "summary": headline(i)} for i in daemon.incidents_list("open", 20)]
        return {"st": st, "uplink": daemon.uplink_view(), "ro": rollout_progress(st, now), "now": now,
                "incidents": incidents}

    @router.get("/")
    def status(request: Request, _: Principal = viewer) -> HTMLResponse:
        return page(request, "status.html.j2", "Status", **status_ctx())

    @router.get("/live/status")
    def status_live(request: Request, _: Principal = viewer) -> HTMLResponse:
        return page(request, "_status_live.html.j2", "Status", **status_ctx())

    @router.get("/gates")
    def gates(request: Request, _: Principal = viewer) -> HTMLResponse:
        g = daemon.gates()
        return page(request, "gates.html.j2", "Gates", g=g, verdicts={v["gate"]: v for v in g.get("verdicts", [])})

    @router.get("/incidents")
    def incidents(request: Request, _: Principal = viewer) -> HTMLResponse:
        return page(request, "incidents.html.j2", "Incidents", incidents=daemon.incidents_list(None, 200))

    @router.get("/incidents/{incident_id}")
    def incident(request: Request, incident_id: str, _: Principal = viewer) -> HTMLResponse:
        i = daemon.incident(incident_id)
        if i is None:
            raise AuthError(404, "not_found", f"no incident {incident_id}")
        actions = timeline.incident_actions(read, incident_id)
        t0, t1 = timeline.incident_window(i, actions)
        fig = timeline.figure(timeline.request_series(read, t0, t1), actions, f"{i['title']} ({i['id']})",
                              onset=i["opened_ts"])
        return page(request, "incident.html.j2", "Incidents", i={**i, "summary": headline(i)}, actions=actions,
                    svg=timeline.svg(fig))

    @router.get("/approvals")
    def approval_list(request: Request, _: Principal = viewer) -> HTMLResponse:
        port = approvals()
        return page(request, "approvals.html.j2", "Approvals", available=port is not None,
                    items=port.list(200) if port else [])

    def _get(approval_id: str) -> tuple[ApprovalsPort, dict[str, Any]]:
        port = approvals()
        a = port.get(approval_id) if port else None
        if port is None or a is None:
            raise AuthError(404, "not_found", f"no approval request {approval_id}")
        return port, a

    def approval_ctx(approval_id: str) -> dict[str, Any]:
        port, a = _get(approval_id)
        gates_now = daemon.status().get("verdicts") or [] if a["status"] == "pending" else []
        o = outcome(a, port.progress(approval_id) if a["status"] == "approved" else None)
        return {"a": a, "o": o, "brief": approval_brief(a, gates_now, daemon.clock.time())}

    @router.get("/approvals/{approval_id}")
    def approval(request: Request, approval_id: str, p: Principal = viewer) -> HTMLResponse:
        return page(request, "approval.html.j2", "Approvals", can_decide=p.role >= Role.approver,
                    **approval_ctx(approval_id))

    @router.get("/approvals/{approval_id}/live")
    def approval_live(request: Request, approval_id: str, _: Principal = viewer) -> HTMLResponse:
        ctx = approval_ctx(approval_id)
        resp = page(request, "_approval_live.html.j2", "Approvals", **ctx)
        if ctx["o"]["final"]:
            resp.headers["X-Live-Final"] = "1"  # the script stops polling
        return resp

    @router.get("/approvals/{approval_id}/confirm")
    def confirm(request: Request, approval_id: str, decision: str = Query(...), _: Principal = approver
                ) -> HTMLResponse:
        if decision not in DECISIONS:
            raise AuthError(422, "invalid", f"decision must be approve or deny, not {decision!r}")
        _, a = _get(approval_id)
        if a["status"] != "pending" or a["expires_at"] <= daemon.clock.time():
            status = "expired" if a["status"] == "pending" else a["status"]
            raise AuthError(409, "not_pending", f"approval {approval_id} is {status}: it can no longer be decided")
        return page(request, "confirm.html.j2", "Approvals", a=a, decision=decision)

    @router.post("/approvals/{approval_id}/decide")
    def decide(request: Request, approval_id: str, decision: str = Form(...), reason: str = Form(""),
               p: Principal = approver) -> Response:
        if decision not in DECISIONS:
            raise AuthError(422, "invalid", f"decision must be approve or deny, not {decision!r}")
        port, a = _get(approval_id)
        if not reason.strip():  # the confirmation page again, saying what is missing
            msg = "a decision needs a reason: say why, it is recorded in the audit log"
            refused_attempt("POST", request.url.path, p, AuthError(422, "no_reason", msg))
            return page(request, "confirm.html.j2", "Approvals", status=422, a=a, decision=decision, error=msg)
        doc = sign_web_decision(approval_id, decision, reason.strip()[:1000], p, daemon.key, daemon.clock.time())
        from samantha.chaos.approvals import DecisionRefused

        try:
            port.decide_signed(approval_id, doc)  # checked and recorded now; an approved experiment runs after
        except DecisionRefused as e:
            raise AuthError(e.status, e.code, e.reason) from None
        daemon.audit_event("approval_decided", {"approval_id": approval_id, "decision": decision, "operator": p.name,
                                                "role": p.role.name, "via": "web", "reason": reason.strip()[:300]})
        metrics.decision(f"approval_{decision}", "web")
        return RedirectResponse(f"/console/approvals/{quote(approval_id)}", status_code=303)

    @router.get("/experiments")
    def experiments(request: Request, _: Principal = viewer) -> HTMLResponse:
        secs = [{"title": t, "table": tb, "data": _generic(read, tb, cols, 0, 1e12)}
                for t, tb, cols in OPTIONAL_TABLES if tb in ("experiments", "findings")]
        return page(request, "experiments.html.j2", "Experiments", sections=secs)

    @router.get("/audit")
    def audit(request: Request, _: Principal = viewer) -> HTMLResponse:
        rows = read("SELECT seq, ts, kind, payload FROM audit ORDER BY seq DESC LIMIT 50", None).to_pylist()
        return page(request, "audit.html.j2", "Audit", r=daemon.audit_verify(), records=rows)

    return router


def mount_static(app: Any) -> None:
    """CSS from the package (mounted on the app: routers do not carry mounts)."""
    app.mount("/console/static", StaticFiles(directory=str(HERE / "static")), name="console-static")


def _safe_next(nxt: str) -> str:
    """Only console paths: a login link must not redirect off-site."""
    return nxt if nxt.startswith("/console/") and not nxt.startswith("//") else "/console/"
