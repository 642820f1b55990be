"""The local LLM triages in the daemon's graph off the fast path: the same failing active slot is
flipped with the same decision, as fast, with the LLM off and on (real twin, real daemon, real
llama.cpp model); with it on, the LLM's verified (or refused) triage lands on the incident after the flip and every
LLM call is in the signed audit log."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.sre.kit import flips, load_and_flip, twin_and_daemon, wait_for


def _flip_after_failure(tmp_path: Path, llm: bool) -> tuple[dict[str, Any], float, dict[str, Any] | None, Path]:
    with twin_and_daemon(tmp_path, llm={"enabled": llm, "timeout_s": 60, "load_timeout_s": 120}) as (twin, daemon):
        wait_for(lambda: daemon.client.status()["verdicts"], 30, "first gate verdicts")
        if llm:  # the model loads in the background; the flip must not wait for it either way
            wait_for(lambda: daemon.client.status()["triage"]["llm"]["available"], 120, "the model loaded")
        good = twin.cube.state().slot("active").bundle_id
        onset = time.time()
        load_and_flip(twin, f"bad-{int(llm)}", str(int(llm)), error_rate=0.5)
        flip = wait_for(lambda: [a for a in flips(daemon) if a["status"] == "verified"], 45, "a verified flip")[0]
        assert twin.cube.state().slot("active").bundle_id == good
        inc = None
        if llm:
            inc = wait_for(lambda: (i := daemon.client.get(f"/v1/incidents/{flip['incident_id']}"))["triage"]
                           and i["triage"].get("llm_outcome") == "ok" and i, 120, "the LLM's triage on the incident")
        assert daemon.stop() == 0, daemon.tail()
        return flip, flip["created_ts"] - onset, inc, Path(daemon.config.data_dir) / "telemetry.duckdb"


@pytest.mark.slow
@pytest.mark.timeout(480)
def test_llm_triage_changes_nothing_on_the_fast_path_and_lands_on_the_incident(tmp_path: Path) -> None:
    off, t_off, _, _ = _flip_after_failure(tmp_path / "off", llm=False)
    on, t_on, inc, db = _flip_after_failure(tmp_path / "on", llm=True)
    same = ("kind", "playbook", "playbook_version", "requested_by")  # bundle ids differ: each twin signs its own
    assert {k: off[k] for k in same} == {k: on[k] for k in same}  # the same decision
    assert off["proposed"]["target_slot"] == on["proposed"]["target_slot"] == "standby"
    assert t_on < max(2 * t_off, t_off + 1.5), (t_off, t_on)  # as fast (generous: a shared 2-core machine)
    assert inc is not None and inc["summary"] and inc["cause"]
    # the LLM's words are shown only if the verifier passed them; otherwise the refusal says why
    assert bool(inc["triage"]["advisory"]) != bool(inc["triage"]["rejected"])
    assert inc["cause"] == inc["triage"]["cause"]  # the rules' cause unless a verified tie-break
    assert inc["updated_ts"] >= on["done_ts"]  # it arrived after the action, not before
    con = duckdb.connect(str(db), read_only=True)
    try:
        calls = con.execute("SELECT payload FROM audit WHERE kind = 'llm_call'").fetchall()
    finally:
        con.close()
    assert calls and any('"source": "llm"' in c[0] and '"model_sha256"' in c[0] for c in calls)
