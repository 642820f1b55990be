"""The chaos thread as a LangGraph graph: pre-flight -> run | wait for a human | refuse.

One thread per submitted proposal, checkpointed in SQLite, so a thread waiting for an
operator (`interrupt()`) survives restarts and resumes with `Command(resume=decision)`
in whichever process holds the file next. Nodes are thin: the work is ChaosService's.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Protocol, TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt


class ChaosState(TypedDict, total=False):
    thread_id: str
    proposal: dict[str, Any]
    guards: list[dict[str, Any]]
    extra_hypothesis: list[str]
    shadow: bool | None
    preflight: dict[str, Any]
    health: dict[str, Any]
    verdict: str
    decision: dict[str, Any]
    result: dict[str, Any]


class ChaosNodes(Protocol):
    def preflight(self, s: ChaosState) -> ChaosState: ...
    def queue(self, s: ChaosState) -> ChaosState: ...  # records the approval item; idempotent per thread
    def execute(self, s: ChaosState) -> ChaosState: ...
    def execute_approved(self, s: ChaosState) -> ChaosState: ...
    def refuse(self, s: ChaosState) -> ChaosState: ...


def topology(nodes: ChaosNodes) -> StateGraph:
    """The whole chaos round, readable in one place."""
    g = StateGraph(ChaosState)
    g.add_node("preflight", nodes.preflight)
    g.add_node("queue_for_approval", nodes.queue)
    g.add_node("await_operator", _await_operator)
    g.add_node("execute", nodes.execute)
    g.add_node("recheck_and_execute", nodes.execute_approved)
    g.add_node("refuse", nodes.refuse)
    g.add_edge(START, "preflight")
    g.add_conditional_edges("preflight", lambda s: s["verdict"],
                            {"sanctioned": "execute", "escalate": "queue_for_approval", "reject": "refuse"})
    g.add_edge("queue_for_approval", "await_operator")
    g.add_conditional_edges("await_operator", lambda s: s["decision"]["decision"],
                            {"approve": "recheck_and_execute", "deny": "refuse", "expired": "refuse"})
    g.add_edge("execute", END)
    g.add_edge("recheck_and_execute", END)
    g.add_edge("refuse", END)
    return g


def _await_operator(s: ChaosState) -> ChaosState:
    """Pause here until an operator's verified decision (or the item's expiry) resumes the thread."""
    decision = interrupt({"thread_id": s["thread_id"], "waiting_for": "a signed operator decision"})
    return {"decision": decision}


class ChaosGraph:
    def __init__(self, nodes: ChaosNodes, checkpoint_path: str | Path) -> None:
        p = Path(checkpoint_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(p, check_same_thread=False)
        self.graph = topology(nodes).compile(checkpointer=SqliteSaver(self._con))

    def close(self) -> None:
        self._con.close()

    def start(self, state: ChaosState) -> dict[str, Any]:
        return self.graph.invoke(state, {"configurable": {"thread_id": state["thread_id"]}})

    def resume(self, thread_id: str, decision: dict[str, Any]) -> dict[str, Any]:
        return self.graph.invoke(Command(resume=decision), {"configurable": {"thread_id": thread_id}})

    def waiting(self, thread_id: str) -> bool:
        snap = self.graph.get_state({"configurable": {"thread_id": thread_id}})
        return bool(snap.next) and "await_operator" in snap.next
