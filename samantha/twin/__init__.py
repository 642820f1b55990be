"""The twin: a rehearsal Cube on this machine, as real processes (slots, router, fault proxies, load). A
separate runtime: it imports only the core and `samantha.cube`.

- `control`: The twin's control API: the CubeRuntime protocol over HTTP, served by the router process.
- `http`: A small, fast HTTP/1.1 server and keep-alive client on asyncio + httptools.
- `lifecycle`: `twin up|down|status`: start the supervisor in its own session, stop its whole group, report.
- `loadgen`: Open-loop load generator: N requests per second of synthetic sensor vectors.
- `model`: The twin's model: a small numpy MLP that classifies synthetic sensor vectors.
- `router`: The twin's router: splits inference traffic between the active and standby slots.
- `router_process`: The router process: data plane (POST /infer) and the control API on two ports, one event loop.
- `scenario`: Scenarios: a YAML timeline of deploys, faults and input shifts, and its application to a twin
  (measuring Samantha on it is the harness's: `samantha.harness.scenario_run`).
- `slot`: A slot server: one process serving one bundle.
- `supervisor`: Runs the twin's processes as one process group, restarts crashed ones, and stops them all.
- `telemetry_push`: Pushes the router's per-request events to an ingest URL in batches.
- `toy_bundle`: The twin's bundles: the toy numpy model trained from a seed, written in the Cube's bundle format.
- `view`: Rich renderings of the twin's status: slots, roles, bundles, live traffic per role.
"""

__all__ = ["control", "http", "lifecycle", "loadgen", "model", "router", "router_process", "scenario", "slot", "supervisor", "telemetry_push", "toy_bundle", "view"]
