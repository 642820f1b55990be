"""The steady-state graph: its topology in one place, compiled with a persistent checkpointer.

    observe -> evaluate -+-> triage -> decide -+-> act -> verify -> record
                         |                     +-> verify -> record   (only earlier actions to confirm)
                         |                     +-> record             (nothing decided, nothing pending)
                         +-> END   (quiet: all gates pass, nothing open; a full cycle still runs every few s)

One LangGraph thread ("steady-state") runs a cycle per invocation; the SQLite
checkpointer saves the state after every node, so a process killed mid-cycle resumes
the interrupted cycle on restart (`resume`), and act's write-ahead ledger makes that
resumption apply each action at most once. Old checkpoints are pruned.

While the last full cycle left everything settled, a cycle first runs observe and
evaluate as plain calls; when the result is quiet the graph is not invoked at all. A
quiet cycle has no side effect to make crash-safe, and skipping the graph's
per-node checkpoints is most of a quiet cycle's cost (the daemon runs ~5 cycles/s).
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections import deque
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from samantha.loop.nodes import SreNodes
from samantha.loop.state import CycleState, fresh

THREAD = {"configurable": {"thread_id": "steady-state"}}
PRUNE_EVERY = 50  # cycles


def after_decide(state: CycleState) -> str:
    pending = state.get("pending") or {}
    if state.get("decisions") or pending.get("intent"):
        return "act"
    return "verify" if pending.get("done") else "record"


def topology(nodes: SreNodes) -> StateGraph:
    """Every node and edge of the steady-state graph."""
    g = StateGraph(CycleState)
    g.add_node("observe", nodes.observe)
    g.add_node("evaluate", nodes.evaluate)
    g.add_node("triage", nodes.triage)
    g.add_node("decide", nodes.decide)
    g.add_node("act", nodes.act)
    g.add_node("verify", nodes.verify)
    g.add_node("record", nodes.record)
    g.add_edge(START, "observe")
    g.add_edge("observe", "evaluate")
    g.add_conditional_edges("evaluate", lambda s: "end" if nodes.quiet(s) else "triage",
                            {"end": END, "triage": "triage"})
    g.add_edge("triage", "decide")
    g.add_conditional_edges("decide", after_decide, {"act": "act", "verify": "verify", "record": "record"})
    g.add_edge("act", "verify")
    g.add_edge("verify", "record")
    g.add_edge("record", END)
    return g


def open_checkpointer(path: Path) -> tuple[SqliteSaver, sqlite3.Connection]:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")  # a checkpoint per node must stay cheap
    conn.execute("PRAGMA synchronous=NORMAL")  # survives a process crash; the ledger is the durable record
    saver = SqliteSaver(conn)
    saver.setup()
    return saver, conn


class SteadyStateGraph:
    def __init__(self, nodes: SreNodes, checkpoint_path: Path, *, keep: int = 20) -> None:
        self.nodes = nodes
        self.keep = keep
        self.saver, self.conn = open_checkpointer(checkpoint_path)
        self.app = topology(nodes).compile(checkpointer=self.saver)
        self.cycles = 0
        self.quiet_cycles = 0
        self.last: dict[str, Any] = {}
        self._overhead: deque[float] = deque(maxlen=500)
        self._total: deque[float] = deque(maxlen=500)

    def resume(self) -> dict[str, Any]:
        """Finish a cycle a crash interrupted (from its last checkpoint). Returns what was resumed."""
        snap = self.app.get_state(THREAD)
        self.cycles = int((snap.values or {}).get("cycle", 0))
        if not snap.next:
            return {"resumed": False}
        at = list(snap.next)
        out = self.app.invoke(None, THREAD, durability="sync")
        self.last = dict(out)
        return {"resumed": True, "at": at, "cycle": self.cycles, "acted": out.get("acted", []),
                "verified": out.get("verified", [])}

    def _quiet_probe(self) -> CycleState | None:
        """observe + evaluate outside the graph when a quiet cycle is possible; the state if it was quiet."""
        if not self.nodes.may_be_quiet():
            return None
        state = fresh(self.cycles)
        state.update(self.nodes.observe(state))  # type: ignore[typeddict-item]
        state.update(self.nodes.evaluate(state))  # type: ignore[typeddict-item]
        return state if self.nodes.quiet(state) else None

    def run_cycle(self) -> dict[str, Any]:
        self.cycles += 1
        t0 = time.perf_counter()
        out = self._quiet_probe()
        if out is None:
            out = self.app.invoke(fresh(self.cycles), THREAD, durability="sync")
        total = (time.perf_counter() - t0) * 1000
        self._total.append(total)
        self._overhead.append(total - sum(out.get("timings", {}).values()))
        self.last = dict(out)
        self.quiet_cycles += "decide" not in out.get("timings", {})
        if self.cycles % PRUNE_EVERY == 0:
            self.prune()
        return self.last

    def prune(self) -> int:
        """Keep the newest `keep` checkpoints of the thread (ids sort by time), and their writes."""
        tid = THREAD["configurable"]["thread_id"]
        cur = self.conn.execute(
            "DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_id NOT IN "
            "(SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? ORDER BY checkpoint_id DESC LIMIT ?)",
            (tid, tid, self.keep))
        self.conn.execute("DELETE FROM writes WHERE thread_id = ? AND checkpoint_id NOT IN "
                          "(SELECT checkpoint_id FROM checkpoints WHERE thread_id = ?)", (tid, tid))
        self.conn.commit()
        return cur.rowcount

    def checkpoint_rows(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        def q(d: deque[float], p: float) -> float | None:
            if not d:
                return None
            s = sorted(d)
            return round(s[min(len(s) - 1, int(p * len(s)))], 3)
        return {"cycles": self.cycles, "quiet_cycles": self.quiet_cycles,
                "cycle_ms_p50": q(self._total, 0.5), "cycle_ms_p95": q(self._total, 0.95),
                "graph_overhead_ms_p50": q(self._overhead, 0.5), "graph_overhead_ms_p95": q(self._overhead, 0.95),
                "graph_overhead_ms_mean": round(statistics.fmean(self._overhead), 3) if self._overhead else None,
                "node_ms": self.last.get("timings", {}), "checkpoints": self.checkpoint_rows()}

    def close(self) -> None:
        self.conn.close()
