<<<<<<< HEAD
"""The daemon's local HTTP API (loopback only) and the client the CLI uses."""
=======
"""The daemon's local HTTP API (loopback only): routers the daemon mounts."""
>>>>>>> wip/rollout
