"""`samantha run`: the composition root and the daemon that owns the DuckDB file and governs the Cube.

- `parts`: the composition root: `build_parts(config, clock)` builds every part, in dependency order, into `Parts`.
- `daemon`: `samantha run`: the lifecycle (open, serve, close) and the loops over the parts.
- `view`: the daemon as the API sees it (`ApiView`, the API's `DaemonView`).
- `alerting`: the alert glue between the loop, triage, the rollout controller and the alert manager.
- `sd_notify`: systemd's notify protocol: one datagram of `KEY=VALUE` lines to the socket in $NOTIFY_SOCKET.
"""

__all__ = ["alerting", "daemon", "parts", "sd_notify", "view"]
