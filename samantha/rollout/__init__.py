"""Progressive rollouts: the controller (an explicit state machine persisted at every transition), its record,
its wiring and its view.

- `actions`: How the controller records its Cube calls write-ahead: `ActionRecorder`, over the shared ledger.
- `bundle_check`: Find and verify a bundle before a rollout: the controller's first check (the Cube checks again).
- `controller`: The progressive-rollout controller: an explicit state machine, persisted at every transition.
- `plans`: The Cube's side of Plans with Constraints: start a Plan's rollout only when its Constraints hold.
- `record`: The rollout controller's persisted state: one record per rollout, appended on every transition.
- `view`: Rich rendering of a RolloutStatus: the step ladder with weights, the gate verdicts, the decisions.
- `wiring`: Builds a RolloutController from config and the daemon's parts (store, Cube client, clock).
"""

__all__ = ["actions", "bundle_check", "controller", "plans", "record", "view", "wiring"]
