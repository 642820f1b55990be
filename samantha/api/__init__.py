"""The daemon's local HTTP API (loopback by default): its app, the routers it mounts, and the client the CLI uses."""
