"""Chaos Toolkit python providers: the actions and probes Samantha's experiments call.

Every action writes its ledger entry (with the revert and a TTL) before it injects;
`revert.py` undoes any entry idempotently, for rollbacks and for crash recovery alike.
"""
