"""The daemon (`samantha run`) rolls out bundles on a real OpenAI-compatible Cube (`samantha cube serve`, llama.cpp
servers of the shipped SmolLM2): chat traffic goes through the router, which scores every shadow answer's text
against the live one above the incumbent's own A/A floor and pushes it to the daemon; the rollout's gates judge that.
A canary whose answers are gibberish (the same model, its final norm negated) is aborted in shadow on the text
divergence and quarantined, the incumbent serving throughout; an A/A canary (the same model file, another bundle)
is promoted with its divergence at the A/A floor."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from samantha.core.config import SamanthaConfig
from samantha.core.writer_tokens import ensure_token_file
from samantha.gates.registry import TEXT_DIVERGENCE_TOLERANCE
from samantha.gates.rollout_policy import RolloutPolicy
from samantha.harness.daemon_process import DaemonProcess, write_config
from samantha.harness.openai_cube import OpenAICube
from tests.conftest import free_port
from tests.cube.gguf_variants import gibberish_model

pytestmark = [pytest.mark.slow, pytest.mark.llm, pytest.mark.timeout(900)]
PROMPTS = ("What is a cube?", "Name a colour.", "What is the capital of France?", "Say hello to a friend.",
           "What do plants need to grow?", "Describe the sea in one sentence.", "What is two plus two?",
           "Why is the sky blue?", "Name an animal that lives in the water.", "What is a computer?")
# Only gates an LLM's few requests a second can settle: errors, and the text divergence against the A/A floor.
# Latency gates tuned for a 1 ms model are left out: two llama.cpp servers share these 2 cores with the shadow
# mirror and its A/A replay, so shadow latency measures the host, not the bundle.
POLICY = RolloutPolicy(
    name="llm-short", alpha=0.001,
    gates=["canary-text-divergence", {"kind": "sequential", "name": "llm-canary-errors", "signal": "errors",
                                      "min_samples": 20}],
    shadow={"min_samples": 30, "min_duration": 5},
    steps=[{"weight": 100, "min_samples": 10, "min_duration": 3}], soak=3, grey_zone={"enabled": False})


@pytest.fixture(scope="session")
def gibberish(tmp_path_factory) -> bytes:
    return gibberish_model(tmp_path_factory.mktemp("gguf") / "gibberish.gguf").read_bytes()


class Traffic:
    """One chat request at a time through the router (greedy, 12 tokens), until stopped; answers by slot."""

    def __init__(self, url: str) -> None:
        self.url, self.stop, self.by_slot, self.failed = url, threading.Event(), {}, []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as c:
            for prompt in itertools.cycle(PROMPTS):
                if self.stop.is_set():
                    return
                r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": prompt}],
                                                           "max_tokens": 12, "temperature": 0})
                if r.status_code == 200:
                    self.by_slot[r.headers["x-cube-slot"]] = self.by_slot.get(r.headers["x-cube-slot"], 0) + 1
                else:
                    self.failed.append(r.text[:200])

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(90)


def _rollout(d: DaemonProcess, cube: OpenAICube, bundle: str, rid: str, timeout_s: float) -> dict[str, Any]:
    """Start a rollout through the daemon's API, with traffic, until it ends; its status document."""
    with Traffic(str(cube.data.base_url)) as traffic:
        r = httpx.post(d.url + "/v1/rollout/start", json={"bundle": bundle, "request_id": rid},
                       headers=d.client.headers(), timeout=300)
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            doc = d.client.get("/v1/rollout/status")
            if doc["phase"] in ("promoted", "aborted", "failed"):
                break
            time.sleep(0.5)
        else:
            rows = d.client.get("/v1/rollout/status")
            raise AssertionError(f"{bundle}: still {rows['phase']} after {timeout_s:.0f} s: {rows}")
    assert not traffic.failed, traffic.failed[:3]
    doc["served_by"] = traffic.by_slot
    return doc


def _divergence(verdicts: list[dict[str, Any]]) -> dict[str, Any]:
    return next(v for v in verdicts if v["gate"] == "canary-text-divergence")


def test_daemon_aborts_a_gibberish_llm_canary_on_text_divergence_and_promotes_an_aa_one(tmp_path: Path,
                                                                                      gibberish: bytes) -> None:
    api_port = free_port()
    # the router's writer credential, where the daemon reads it (twin.ingest_token_file under its data_dir)
    token = tmp_path / "state" / "writers" / "router.token"
    ensure_token_file(token)
    cube = OpenAICube(tmp_path / "cube", ingest_url=f"http://127.0.0.1:{api_port}/v1/ingest/requests",
                      ingest_token_file=str(token)).start()
    try:
        # the incumbent: the shipped model promoted on B by an operator, before the daemon starts
        assert cube.op("load", bundle=cube.bundle("v1", "1")).status_code == 200
        assert cube.op("flip").status_code == 200
        incumbent = cube.slot("B")["bundle_id"]
        cube.bundle("gibberish", "2", gibberish)
        cube.bundle("v1-again", "3")  # A/A: the same model file, another bundle
        (tmp_path / "playbooks").mkdir()
        policy_file = tmp_path / "rollout-policy.yaml"
        policy_file.write_text(yaml.safe_dump(POLICY.model_dump(mode="json")))
        cfg = SamanthaConfig.model_validate({
            "data_dir": str(tmp_path / "state"), "api": {"port": api_port}, "host_collector": {"enabled": False},
            "llm": {"enabled": False},
            "twin": {"bundles_dir": str(cube.root / "bundles"), "trusted_keys": str(cube.root / "trusted"),
                     "max_bundle_file_mb": 512},
            "sre": {"cube_url": str(cube.ctl.base_url), "playbook_dirs": [str(tmp_path / "playbooks")],
                    "rollout_policy": str(policy_file), "rollout_max_step_s": 240}})
        with DaemonProcess(cfg, write_config(cfg, tmp_path / "samantha.yaml"), log=tmp_path / "daemon.log") as d:
            d.start().wait_ready(90)

            # the gibberish canary: aborted in shadow on the text divergence, quarantined; the incumbent serves
            bad = _rollout(d, cube, "gibberish", "llm-bad-1", 240)
            rec = bad["rollout"]
            assert bad["phase"] == "aborted", (rec["reason"], d.tail())
            fail = next(v for v in rec["step_verdicts"] if v["status"] == "fail")
            assert fail["step"] == "shadow", fail
            div = _divergence(fail["verdicts"])
            assert div["status"] == "fail" and "divergence" in div["reason"], div
            assert "canary-text-divergence" in rec["reason"], rec["reason"]
            st = cube.state()
            bad_id = rec["bundle_id"]
            assert any(q["bundle_id"] == bad_id for q in st["quarantine"]), st["quarantine"]
            assert st["active"] == "B" and cube.slot("B")["bundle_id"] == incumbent and not st["shadow"]
            assert st["weights"]["standby"] == 0
            assert set(bad["served_by"]) == {"B"}  # no live answer ever came from the canary
            r = cube.data.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": PROMPTS[0]}],
                                                              "max_tokens": 8, "temperature": 0})
            assert r.status_code == 200 and r.headers["x-cube-slot"] == "B" and r.json()["choices"][0]["message"]
            r = httpx.post(d.url + "/v1/rollout/start", json={"bundle": "gibberish", "request_id": "llm-bad-2"},
                           headers=d.client.headers(), timeout=60)
            assert r.status_code == 409 and r.json()["error"]["code"] == "quarantined", r.text

            # the A/A canary: through shadow and 100 % to a flip, its divergence at the floor
            good = _rollout(d, cube, "v1-again", "llm-good-1", 300)
            rec = good["rollout"]
            assert good["phase"] == "promoted", (rec["reason"], d.tail())
            assert [v["step"] for v in rec["step_verdicts"]] == ["shadow", 0]
            assert all(v["status"] == "pass" for v in rec["step_verdicts"]), rec["step_verdicts"]
            aa = _divergence(rec["step_verdicts"][0]["verdicts"])
            assert aa["status"] == "pass" and aa["samples"]["compared"] >= 30, aa
            st = cube.state()
            assert st["active"] == "A" and cube.slot("A")["bundle_id"] == rec["bundle_id"] != incumbent
            assert "A" in good["served_by"]
            print(f"gibberish canary: {div['samples']} compared, {div['reason']}; "
                  f"A/A canary: {aa['samples']} compared, {aa['reason']}")
    finally:
        cube.stop()
    # the figures: mean text divergence per shadow answer, from the daemon's own store
    import duckdb

    with duckdb.connect(str(cfg.resolve(cfg.store.path)), read_only=True) as db:
        rows = db.execute("SELECT bundle, avg(divergence), max(divergence), count(divergence), "
                          "count(*) FILTER (WHERE divergence > ?) FROM requests WHERE shadow GROUP BY bundle",
                          [TEXT_DIVERGENCE_TOLERANCE]).fetchall()
    figures = {b: (mean, mx, n, over) for b, mean, mx, n, over in rows}
    print("shadow text divergence (mean, max, compared, over tolerance):", figures)
    g_mean, _, g_n, g_over = figures[bad_id]
    a_mean, a_max, a_n, a_over = figures[rec["bundle_id"]]
    assert g_n > 0 and g_mean > 0.8 and g_over / g_n > 0.9, figures[bad_id]
    assert a_n >= 30 and a_over / a_n <= 0.1 and a_mean < TEXT_DIVERGENCE_TOLERANCE, figures[rec["bundle_id"]]
