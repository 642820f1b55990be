"""The daemon's local HTTP API (loopback only) and the client the CLI uses."""
