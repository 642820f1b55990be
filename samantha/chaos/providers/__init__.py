"""Chaos Toolkit python providers: the actions and probes Samantha's experiments call. Every action writes its
ledger entry (with the revert and a TTL) before it injects; `revert` undoes any entry idempotently, for
rollbacks and crash recovery alike.

- `actions`: Chaos Toolkit actions. Each one records its ledger entry (revert + TTL) before it injects.
- `cube`: How providers find the Cube's parts: the control API, the proxy API, and slot processes.
- `probes`: Chaos Toolkit probes: the steady-state hypothesis asks Samantha's gates, over her local API.
- `revert`: Undo one ledger entry. Idempotent: reverting what is already undone (or never happened) is a no-op.
- `stressor`: A bounded resource stressor process: `python -m samantha.chaos.providers.stressor cpu|memory ...`.
"""

__all__ = ["actions", "cube", "probes", "revert", "stressor"]
