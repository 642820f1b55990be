"""The shared core: domain records, injected time, configuration, signing, validated YAML, DuckDB transactions
and the signed audit log. Imports nothing else of Samantha.

- `audit`: The decision log: append-only, hash-chained, and signed with the Cube's ed25519 key.
- `clock`: Injected time: every component that waits or timestamps takes a Clock.
- `config`: `samantha.yaml`, loaded into pydantic models.
- `crashpoint`: Test-only fault hook: SIGKILL this process at a named point, to prove crash recovery.
- `cube_state`: The Cube's state as its runtime reports it: slots, weights, shadow, quarantine, safe mode.
- `domain`: Typed domain records shared across subsystems. Declare them here once; import, don't re-declare.
- `fsutil`: Crash-safe file replacement: the old content or the new one, never a torn mix.
- `operators`: The trusted-operators file: who may read, approve and administer this Cube.
- `process_group`: Stop a child started in its own session: SIGTERM its group, SIGKILL after a grace period.
- `ports`: Loopback ports for servers that must know theirs before they start, outside the ephemeral range.
- `proposal`: A proposed chaos experiment: a fault kind, a target role and raw parameters, from any source.
- `signing`: ed25519 keys, canonical JSON, and detached signatures.
- `transaction`: One explicit DuckDB transaction: everything inside commits together, or nothing does.
- `validated_yaml`: YAML documents validated by pydantic, with errors that name file, line, column and field.
"""

__all__ = ["audit", "clock", "config", "crashpoint", "cube_state", "domain", "fsutil", "operators", "ports",
           "process_group", "proposal", "signing", "transaction", "validated_yaml"]
