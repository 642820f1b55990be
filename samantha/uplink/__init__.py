"""The uplink: the durable outbox, its upload to the hub, the signed policy module, safe mode and alert
forwarding.

- `alerts`: Local alerts, and their forwarding to Alertmanager-compatible webhook receivers.
- `dora_facts`: The DORA facts a hub needs, queued once each when they become final.
- `local`: The uplink without a daemon: the CLI (or a test) opens the DuckDB file itself as its one writer.
- `operator_docs`: Documents operators sign for a Cube: safe-mode overrides and approval decisions (pure checks).
- `outbox`: The durable outbox: Reported State waiting for the hub, in the daemon's DuckDB file.
- `policy_module`: The policy module: the hub's signed desired state, and the Cube's checks before it applies one.
- `recall`: The Recall document: the root's signed order that one bundle must not serve anywhere (pure checks).
- `safe_mode`: Safe mode: the state a Cube falls back to when its policy module has expired.
- `service`: `UplinkService`: the uplink as one object the daemon ticks (or the CLI runs when no daemon does).
- `uploader`: Opportunistic upload of the outbox: in sequence order, idempotent by batch id, acked by watermark.
"""

__all__ = ["alerts", "dora_facts", "local", "operator_docs", "outbox", "policy_module", "recall", "safe_mode", "service", "uploader"]
