"""The daemon's local HTTP API (loopback only): routers the daemon mounts."""
