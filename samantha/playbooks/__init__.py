"""SRE-authored playbooks: when gates say so, for long enough, in scope -> actions, within limits.

- `model`: the document (pydantic, errors with file:line:column), its JSON Schema, loading;
- `lint`: the checks a schema cannot make;
- `runner`: verdicts in, firings out (deterministic, no LLM);
- `backtest`: recorded telemetry replayed through the runner on a simulated clock;
- `playbook_set`: the playbooks the daemon runs (shipped, configured, or a policy module's).
"""

from samantha.playbooks.backtest import BacktestReport, backtest
from samantha.playbooks.lint import lint
from samantha.playbooks.model import Playbook, load_playbook, playbook_schema
from samantha.playbooks.runner import Firing, PlaybookRunner, RunContext, combine

__all__ = ["BacktestReport", "Firing", "Playbook", "PlaybookRunner", "RunContext", "backtest", "combine", "lint",
           "load_playbook", "playbook_schema"]
