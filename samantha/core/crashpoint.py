"""Test-only fault hook: SIGKILL this process at a named point, to prove crash recovery.

Set SAMANTHA_CRASH_AT to a point name (e.g. `act.after_intent.flip`, `node.verify`);
the process kills itself, uncatchably, the first time it reaches that point. Unset
(always, in production) it costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "SAMANTHA_CRASH_AT"


def crashpoint(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
