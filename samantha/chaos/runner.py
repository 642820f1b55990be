"""One Chaos Toolkit run in its own process: `python -m samantha.chaos.runner EXPERIMENT JOURNAL`.

chaoslib installs signal handlers, so it must own a main thread: one experiment per
process. The process dies with its parent (PR_SET_PDEATHSIG): a crashed daemon must not
leave a runner injecting behind the recovery's back.

chaoslib 1.44 reads neither `settings.runtime.hypothesis` nor the experiment's own
`runtime` block: the continuous hypothesis is the `strategy` + `schedule` arguments
(as the chaos CLI passes them); rollbacks-always is `settings.runtime.rollbacks`.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any


def _die_with_parent(parent: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(3)


def settings_for(frequency_s: float) -> dict[str, Any]:
    return {"runtime": {"rollbacks": {"strategy": "always"},
                        # recorded for the journal's readers; chaoslib 1.44 takes these as arguments (below)
                        "hypothesis": {"strategy": "continuously", "frequency": frequency_s, "fail_fast": True}}}


def run(experiment: dict[str, Any], frequency_s: float) -> dict[str, Any]:
    from chaoslib.experiment import run_experiment
    from chaoslib.run import RunEventHandler
    from chaoslib.types import Schedule, Strategy

    from samantha.chaos.providers import actions

    class AbortOnDeviation(RunEventHandler):  # type: ignore[misc]
        def continuous_hypothesis_iteration(self, iteration_index: int, state: Any) -> None:
            if state is not None and not state.get("steady_state_met", True):
                actions.abort()  # a holding action returns at once; chaoslib then skips to the rollbacks

        def continuous_hypothesis_completed(self, experiment: Any, journal: Any, exception: Any = None) -> None:
            if journal.get("status") == "failed":
                actions.abort()

    return run_experiment(experiment, settings=settings_for(frequency_s), strategy=Strategy.CONTINUOUS,
                          schedule=Schedule(continuous_hypothesis_frequency=frequency_s, fail_fast=True,
                                            fail_fast_ratio=0.0),
                          event_handlers=[AbortOnDeviation()])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m samantha.chaos.runner")
    ap.add_argument("experiment", type=Path)
    ap.add_argument("journal", type=Path)
    ap.add_argument("--frequency", type=float, default=0.5)
    ap.add_argument("--parent", type=int, default=None)
    a = ap.parse_args(argv)
    if a.parent is not None:
        _die_with_parent(a.parent)
    journal = run(json.loads(a.experiment.read_text()), a.frequency)
    tmp = a.journal.with_suffix(".tmp")
    tmp.write_text(json.dumps(journal, default=str, indent=1))
    os.replace(tmp, a.journal)
    sys.exit(0)


if __name__ == "__main__":
    main()
