"""Chaos: the fault-kind registry, planner, pre-flighted runs as Chaos Toolkit experiments, the injection ledger,
findings and the approval queue.

- `approvals`: The approval queue: escalated chaos proposals wait here for a signed operator decision.
- `db`: The chaos state file: one SQLite database (WAL) shared by the daemon and its runner subprocesses.
- `experiment`: Proposal -> Chaos Toolkit experiment document; templates (experiments/*.yaml); journal reading.
- `fault_kinds`: The fault-kind registry: every fault Samantha may inject, one declaration per kind.
- `findings`: Findings from a run (journal + probe log + telemetry of the run), and gates compiled from them.
- `graph`: The chaos thread as a LangGraph graph: pre-flight -> run | wait for a human | refuse.
- `ledger`: The injection ledger: every fault is written here, with its revert and a TTL, BEFORE it goes in.
- `native_classify`: Native Chaos Toolkit experiments, in: parse, validate with chaoslib, classify every activity
  (ChaosService.submit_native judges, ledgers and runs them, or queues them for an operator).
- `planner`: Experiment planning, Monocle-style: generated from the Cube's dependency map, ranked, deduplicated.
- `providers`: Chaos Toolkit python providers: the actions and probes Samantha's experiments call.
- `records`: Experiments, findings, learned gates and the upward outbox, in the chaos SQLite file.
- `runner`: One Chaos Toolkit run in its own process: `python -m samantha.chaos.runner EXPERIMENT JOURNAL`.
- `service`: ChaosService: plan, pre-flight, run, learn, recover. The daemon (`samantha run`) hosts it.
"""

__all__ = ["approvals", "db", "experiment", "fault_kinds", "findings", "graph", "ledger", "native_classify", "planner", "providers", "records", "runner", "service"]
