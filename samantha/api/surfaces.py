"""The operator surfaces the daemon mounts: auth, `/metrics`, DORA/report endpoints, the web console.

One mount point so the daemon needs three lines: `Surfaces.attach(daemon)` when it opens
(refuses a non-loopback bind without TLS), `surfaces.secure(app)` on the API app, and
`surfaces.after_cycle(out)` after each steady-state cycle (latency histograms).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from samantha import __version__
from samantha.api import metrics
from samantha.api.auth import AuthService, check_binding, install
from samantha.api.ops_routes import make_ops_router

log = logging.getLogger("samantha.api.surfaces")


class Surfaces:
    def __init__(self, daemon: Any) -> None:
        self.daemon = daemon
        cfg = daemon.config
        self.tls: dict[str, Any] = check_binding(cfg)  # BindRefused stops the daemon before it listens
        self.auth = AuthService.from_config(cfg, daemon.clock)
        self.scheme = "https" if self.tls else "http"
        read = self.read
        cube_id = daemon.key.public.key_id if getattr(daemon, "key", None) is not None else ""
        self.routers = [make_ops_router(read, cube=cube_id, flush=daemon.store.flush)]
        with contextlib.suppress(ImportError):  # the console ships in the same package; guard partial installs
            from samantha.api.console import make_console_router

            self.routers.append(make_console_router(daemon, self.auth, read))
        metrics.set_version(__version__)
        metrics.bind_store(daemon.store.stats)
        metrics.bind_cube(lambda: (daemon.graph.last or {}).get("cube"))
        metrics.bind_actions(self._action_counts)
        metrics.bind_decisions(self._decision_counts)

    @classmethod
    def attach(cls, daemon: Any) -> Surfaces:
        s = cls(daemon)
        daemon._routers.extend(s.routers)
        return s

    def read(self, sql: str, params: Any = None) -> Any:
        return self.daemon.store.read_arrow(sql, params or None)

    def secure(self, app: Any) -> Any:
        with contextlib.suppress(ImportError):
            from samantha.api.console import mount_static

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
