"""The safety kernel, pure: policy rules and pre-flight rules, each with an id and a catalog, and the one view
that turns Cube state into the kernel's snapshot. Imports only the core.

- `plans`: Plans with Constraints: "roll out bundle X when ..." (window, min version, required bundle). Pure.
- `policy`: The safety kernel: every action, from any requester, is judged here before it reaches the Cube.
- `preflight`: Pre-flight: the blast-radius check every proposal passes before it may run. Pure; one function
  per rule, each with an id (`rule_catalog()`); fault kinds reach it as typed `BlastProfile`s.
- `recall`: A Recall at the Cube: the next action that takes a recalled bundle out of service, or why none can.
- `ratelimit`: Sliding-window rate limits: one pure counting rule, and a small clock-injected limiter.
- `view`: The one view that turns the Cube's state into the safety kernel's input (and what a rollout in
  progress is).
"""

__all__ = ["plans", "policy", "preflight", "ratelimit", "recall", "view"]
