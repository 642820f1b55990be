"""The playbooks the daemon runs: the shipped set, or the directories configured in `sre.playbook_dirs`."""

from __future__ import annotations

from pathlib import Path

from samantha.core.config import SamanthaConfig
from samantha.core.validated_yaml import DocumentError, Problem
from samantha.gates.registry import GateRegistry, Provenance
from samantha.gates.spec import GateBase
from samantha.playbooks import Playbook, PlaybookRunner, lint

SHIPPED = Path(__file__).resolve().parents[2] / "playbooks"


def playbook_files(config: SamanthaConfig) -> list[Path]:
    dirs = [config.resolve(d) for d in config.sre.playbook_dirs] if config.sre.playbook_dirs is not None \
        else [SHIPPED]
    files: list[Path] = []
    for d in dirs:
        if not d.is_dir():
            raise DocumentError([Problem(str(d), 0, 0, "sre.playbook_dirs", "not a directory")])
        files += sorted(d.glob("*.yaml")) + sorted(d.glob("*.yml"))
    return files


def load_playbooks(config: SamanthaConfig) -> list[Playbook]:
    """Every playbook, linted as a set; DocumentError lists every problem (file:line:column, field, reason)."""
    loaded, problems = lint(playbook_files(config), raw_horizon_s=config.store.raw_horizon_s,
                             probes=config.twin.probe_percent > 0)
    if problems:
        raise DocumentError(problems)
    return [ld.playbook for ld in loaded if ld.playbook is not None]


def runner_in_force(local: list[Playbook], offered: list[Playbook], gates: list[GateBase], source: str
                    ) -> PlaybookRunner:
    """The hub's signed playbooks (with the gates they name) replace the local set; an empty offer keeps it.

    Raises KeyError naming a playbook's unknown gate: the caller keeps the set in force.
    """
    if not offered:
        return PlaybookRunner(local)
    registry = GateRegistry.with_builtins()
    for g in gates:
        registry.add(g, Provenance(source="playbook", playbook=source), replace=True)
    return PlaybookRunner(offered, registry)
