"""SRE-authored playbooks: the model, its validation, the runner the steady-state loop drives, and the set in
force.

- `playbook`: SRE-authored playbooks: when gates say so, for long enough, in scope -> actions, within limits.
- `playbook_set`: The playbooks the daemon runs: the shipped set, or the directories configured in `sre.playbook_dirs`.
"""

__all__ = ["playbook", "playbook_set"]
