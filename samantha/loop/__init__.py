"""The steady-state loop: the LangGraph graph (topology, nodes, state), the write-ahead action ledger,
incidents and advisory triage.

- `effects`: What each action does at the Cube, how to tell it already happened, and how telemetry confirms it.
- `graph`: The steady-state graph: its topology in one place, compiled with a persistent checkpointer.
- `incidents`: Incidents: open on a playbook firing, group related failing verdicts, link actions, close when quiet.
- `known_good`: The known-good set: bundles that have served healthily on this Cube, the one set every requester
  reads (persisted).
- `ledger`: The write-ahead action ledger (`actions` table): an intent is durable before the Cube is called.
- `llm_triage`: The local LLM as the steady-state graph's advisory triage (a `TriageFn` for the Triager thread).
- `nodes`: Bodies of the steady-state graph's nodes. The topology is in samantha/loop/graph.py.
- `recall`: Applying a verified Recall at the Cube, through the daemon's one action path.
- `state`: The steady-state graph's cycle state: plain JSON-able data, checkpointed after every node.
- `tables`: DDL of the SRE tables in the daemon's DuckDB file: `actions` (write-ahead), `incidents` and `known_good`.
- `triage`: Advisory triage, off the fast path: a bounded queue and one worker thread.
"""

__all__ = ["effects", "graph", "incidents", "known_good", "ledger", "llm_triage", "nodes", "recall", "state", "tables",
           "triage"]
