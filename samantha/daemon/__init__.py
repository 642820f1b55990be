"""`samantha run`: the composition root and the daemon that owns the DuckDB file and governs the Cube.

- `daemon`: `samantha run`: one process that owns the DuckDB file and governs the Cube.
- `sd_notify`: systemd's notify protocol: one datagram of `KEY=VALUE` lines to the socket in $NOTIFY_SOCKET.
"""

__all__ = ["daemon", "sd_notify"]
