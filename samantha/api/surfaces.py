"""The operator surfaces the daemon mounts: auth, `/metrics`, DORA/report endpoints, the web console.

One part the composition root builds (`samantha/daemon/parts.py`): `Surfaces(...)` refuses a
non-loopback bind without TLS, binds the metrics gauges and builds the ops router (`routers`);
`console_router(view)` builds the console over the daemon's API view; `secure(app)` installs
auth on the API app; `after_cycle(out)` records each steady-state cycle's latency histograms.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from samantha import __version__
from samantha.api import metrics
from samantha.api.auth import AuthService, check_binding, install
from samantha.api.console import ConsoleView, make_console_router, mount_static
from samantha.api.ops_routes import make_ops_router
from samantha.core.clock import Clock
from samantha.core.config import SamanthaConfig
from samantha.telemetry.store import TelemetryStore

log = logging.getLogger("samantha.api.surfaces")


class Surfaces:
    """`cube_id`: the Cube key's id (reports name it); `last_cube`: the Cube state the last cycle saw (gauges)."""

    def __init__(self, config: SamanthaConfig, clock: Clock, store: TelemetryStore, *, cube_id: str = "",
                 last_cube: Callable[[], dict[str, Any] | None] = lambda: None) -> None:
        self.store = store
        self.tls: dict[str, Any] = check_binding(config)  # BindRefused stops the daemon before it listens
        self.auth = AuthService.from_config(config, clock)
        self.scheme = "https" if self.tls else "http"
        self.routers: list[APIRouter] = [make_ops_router(self.read, cube=cube_id, flush=store.flush)]
        metrics.set_version(__version__)
        metrics.bind_store(store.stats)
        metrics.bind_cube(last_cube)
        metrics.bind_actions(self._action_counts)
        metrics.bind_decisions(self._decision_counts)

    def console_router(self, view: ConsoleView) -> APIRouter:
        return make_console_router(view, self.auth, self.read, secure_cookie=bool(self.tls))

    def read(self, sql: str, params: Any = None) -> Any:
        return self.store.read_arrow(sql, params or None)

    def secure(self, app: Any) -> Any:
        mount_static(app)

        @app.get("/", include_in_schema=False)
        def _root() -> Any:
            from fastapi.responses import RedirectResponse

            return RedirectResponse("/console/", status_code=303)

        install(app, self.auth)
        return app

    def after_cycle(self, out: dict[str, Any]) -> None:
        timings = out.get("timings") or {}
        if "evaluate" in timings:
            metrics.gate_evaluated(timings["evaluate"] / 1000)
        if timings:
            metrics.cycle_done(sum(timings.values()) / 1000)

    def _action_counts(self) -> list[tuple[str, str, int]]:
        rows = self.read("SELECT kind, status, count(*) AS n FROM actions GROUP BY ALL ORDER BY ALL").to_pylist()
        return [(r["kind"], r["status"], int(r["n"])) for r in rows]

    def _decision_counts(self) -> list[tuple[str, int]]:
        rows = self.read("SELECT kind, count(*) AS n FROM audit GROUP BY ALL ORDER BY ALL").to_pylist()
        return [(r["kind"], int(r["n"])) for r in rows]
