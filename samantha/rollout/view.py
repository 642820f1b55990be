"""Rich rendering of a RolloutStatus: the step ladder with weights, the gate verdicts, the decisions."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Group
from rich.table import Table
from rich.text import Text

from samantha.rollout.record import RolloutStatus

_COLOUR = {"pass": "green", "fail": "red", "inconclusive": "yellow"}
_PHASE = {"promoted": "green", "aborted": "red", "failed": "red"}


def _t(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S.%f")[:-3]


def render(st: RolloutStatus, *, decisions: int = 8) -> Group:
    rec = st.rollout
    if rec is None:
        return Group(Text("no rollout yet", style="dim"))
    head = Text.assemble(("rollout ", "bold"), (rec.id, "cyan"), "  ", (rec.bundle_label, "bold"),
                         f" ({rec.bundle_id[:12]})  ", (rec.phase.upper(), _PHASE.get(rec.phase, "yellow")),
                         f"  standby weight {st.weight:g}%")
    ladder = Table.grid(padding=(0, 1))
    cells = []
    passed = {str(v.step) for v in rec.step_verdicts if v.status == "pass"}
    failed = {str(v.step) for v in rec.step_verdicts if v.status == "fail"}
    names = (["shadow"] if any(v.step == "shadow" for v in rec.step_verdicts) or rec.phase == "shadow" else [])
    names += [str(i) for i in range(len(rec.steps))]
    for n in names:
        label = "shadow" if n == "shadow" else f"{rec.steps[int(n)]:g}%"
        current = (n == "shadow" and rec.phase == "shadow") or (n != "shadow" and rec.step == int(n)
                                                                and rec.phase in ("step", "soak", "flipping"))
        style = "bold red" if n in failed else "green" if n in passed else "bold yellow" if current else "dim"
        cells.append(Text(("▶ " if current else "") + label, style=style))
    ladder.add_row(*cells, Text("flip", style="green" if rec.phase == "promoted" else "dim"))
    parts: list = [head, ladder]
    if rec.approval_id:
        parts.append(Text(f"held in a grey zone: approval {rec.approval_id} waits for an operator "
                          "(approve: advance; deny: abort)", style="bold yellow"))
    v = st.last_verdict or (rec.step_verdicts[-1] if rec.step_verdicts else None)
    if v is not None:
        gates = Table(box=None, show_header=True, header_style="dim", pad_edge=False)
        for c in ("gate", "status", "samples", "reason"):
            gates.add_column(c)
        for g in v.verdicts:
            gates.add_row(g.gate, Text(g.status, style=_COLOUR[g.status]),
                          " ".join(f"{k}={n}" for k, n in g.samples.items()), g.reason[:70])
        parts += [Text.assemble("step verdict: ", (v.status, _COLOUR[v.status]),
                                f"  {v.canary_samples}/{v.min_samples} canary samples, "
                                f"{v.elapsed_s:.1f}/{v.min_duration_s:.0f} s"), gates]
    if rec.decisions:
        dt = Table(box=None, show_header=True, header_style="dim", pad_edge=False)
        for c in ("time", "action", "result", "reason"):
            dt.add_column(c)
        for d in rec.decisions[-decisions:]:
            dt.add_row(_t(d.ts), d.kind, Text(d.result, style="green" if d.result == "done" else "red"),
                       (d.reason + (f" [{d.detail}]" if d.detail else ""))[:90])
        parts.append(dt)
    if rec.phase in ("promoted", "aborted", "failed"):
        parts.append(Text(f"{rec.phase}: {rec.reason}", style=_PHASE[rec.phase]))
    return Group(*parts)
