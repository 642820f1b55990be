"""Benchmarks: each one a function that returns one JSON-able dict; `samantha bench ...` prints it.

- `chaos`: `samantha bench chaos`: pre-flight over generated proposals, leftovers after SIGKILL, abort latency.
- `fleet`: `samantha bench fleet`: N Cubes catch up at once through a regional leaf; lost, doubled, writers, faults.
  (`fleet_outbox`: the Cubes' cloned outboxes; `fleet_daemon`: the daemon's NATS vs HTTP uplink footprint.)
- `judge`: `samantha bench judge`: how good and how fast the rollout judge is.
- `mitigate`: `samantha bench mitigate`: time to mitigate hard faults, time to detect soft ones, false actions.
- `offline`: `samantha bench offline`: a week offline on a SimClock, then catch-up through a flapping link.
- `proxy`: `samantha proxy bench`: proxy overhead and latency-toxic accuracy on real loopback HTTP.
- `telemetry`: `samantha telemetry bench`: measured figures for the store, as one JSON-able dict.
- `twin`: `samantha twin bench`: how fast the twin's router goes, and what a flip costs under load.
"""

__all__ = ["chaos", "fleet", "fleet_daemon", "fleet_outbox", "judge", "mitigate", "offline", "proxy", "telemetry", "twin"]
