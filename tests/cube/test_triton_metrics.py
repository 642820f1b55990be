"""Real Triton's own metrics: its --metrics-port scraped into a real DuckDB store (labelled with the slot, its
role and bundle), the server gates' verdicts on the real counters (pass, then fail when Triton counts
failures, then pass again after a real restart reset the counters), the shipped playbook's firing judged by
the kernel, and a bad exposition beside a good one: the bad lines named, the good samples kept, the loop on."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest

from samantha.core.clock import REAL_CLOCK
from samantha.core.config import ScrapeTarget
from samantha.core.cube_state import CubeState
from samantha.cube.bundle import SigningKey, load_trusted_keys, trust_key
from samantha.cube.fault_profile import FaultProfile
from samantha.cube.triton_bundle import build_triton_bundle, place, verify_triton_bundle
from samantha.gates import statistics as stats
from samantha.gates.engine import GateEngine
from samantha.gates.registry import GateRegistry
from samantha.gates.spec import TRITON_FAILURE, TRITON_SUCCESS
from samantha.harness.triton_process import TritonServer, TritonUnavailable, find_triton
from samantha.kernel.policy import ProposedAction, decide, scope_for_playbook
from samantha.kernel.view import kernel_snapshot
from samantha.playbooks import PlaybookRunner, RunContext, load_playbook
from samantha.telemetry import TelemetryStore
from samantha.telemetry import queries as q
from samantha.telemetry.scrape import PrometheusScraper
from tests.gates.test_playbooks import ROOT
from tests.loopback_text import serve_text

pytestmark = pytest.mark.slow
X = {"inputs": [{"name": "x", "shape": [8], "datatype": "FP32", "data": [0.5, -0.2, 0.1, 0.9, 0.0, 0.3, -0.7, 0.4]}]}
PLAYBOOK = ROOT / "playbooks" / "triton-active-failures.yaml"
ROLES = {"A": {"role": "active", "bundle": "sensor-1"}}


@pytest.fixture
def triton(tmp_path):
    try:
        find_triton()
        server = TritonServer(tmp_path, "A").start()
    except TritonUnavailable as e:
        pytest.skip(f"Triton cannot start here: {e}")
    key = SigningKey.generate(tmp_path / "k.pem")
    trust_key(key, tmp_path / "trusted")
    yield server, key, load_trusted_keys(tmp_path / "trusted")
    server.stop()


@pytest.fixture
def store(config):
    s = TelemetryStore.open(config, REAL_CLOCK)
    yield s
    s.close()


def _load(server, key, trusted, root, name, **kw):
    build_triton_bundle(root / name, name="sensor", version="1", key=key, **kw)
    model = place(verify_triton_bundle(root / name, trusted), server.repository)
    r = httpx.post(f"{server.url}/v2/repository/models/{model}/load", timeout=60)
    assert r.status_code == 200, r.text


def _infer(server, n):
    with httpx.Client(timeout=10) as c:
        return [c.post(f"{server.url}/v2/models/sensor/infer", json=X).status_code for _ in range(n)]


def _scrape(scraper, store):
    info = scraper.scrape_target(scraper.targets[0])
    assert info["up"] == 1 and info["error"] is None and not info["rejected"], info
    store.flush()
    return info


def test_server_gate_flips_on_real_triton_counters_across_a_restart(triton, store, tmp_path):
    server, key, trusted = triton
    _load(server, key, trusted, tmp_path, "good")
    target = ScrapeTarget(name="triton-a", url=f"http://127.0.0.1:{server.metrics_port}/metrics", slot="A")
    scraper = PrometheusScraper(store, [target], slot_roles=lambda: ROLES)
    reg = GateRegistry.with_builtins()
    gate = reg.get("triton-active-failure-ratio")
    engine = GateEngine(store)
    try:
        _scrape(scraper, store)
        assert _infer(server, 30) == [200] * 30
        _scrape(scraper, store)
        labels = {"slot": "A", "role": "active", "bundle": "sensor-1", "model": "sensor", "version": "1",
                  "scrape_target": "triton-a"}
        assert q.metric_window(store, TRITON_SUCCESS, 60, labels=labels).last == 30.0
        v = engine.evaluate([gate], time.time())[0]
        assert v.status == "pass", v.reason
        assert v.values["denominator"] == 30 and v.values["numerator"] == 0

        # the same model reloaded as a defective bundle: Triton counts every request as a BACKEND failure
        _load(server, key, trusted, tmp_path, "bad", profile=FaultProfile(error_rate=1.0))
        assert _infer(server, 30) == [500] * 30
        _scrape(scraper, store)
        failed = q.metric_window(store, TRITON_FAILURE, 60, labels={**labels, "reason": "BACKEND"})
        assert failed.last == 30.0
        runner = PlaybookRunner([load_playbook(PLAYBOOK)])
        firings = []
        for _ in range(2):  # `for: 2` evaluations
            now = time.time()
            v = engine.evaluate([gate], now)[0]
            assert v.status == "fail", v.reason
            firings += runner.step([v], RunContext(now))
        assert v.values["numerator"] == 30 and v.values["denominator"] == 60  # Triton kept its counts across the reload
        assert "failure_ratio 0.5 > 0.2" in v.reason

        # a real restart (same ports): every counter starts again from 0; the increase does not go negative
        restarted = time.time()
        server.stop()
        server.start()
        _load(server, key, trusted, tmp_path, "good2")
        _scrape(scraper, store)  # an increase needs two samples in the window: one before the requests
        assert _infer(server, 25) == [200] * 25
        _scrape(scraper, store)
        _, ok = (store.read_arrow(
            "SELECT s.ts, s.value FROM samples s JOIN series r ON r.id = s.series_id WHERE r.metric = ? "
            "ORDER BY s.ts", [TRITON_SUCCESS]).column(c).to_numpy() for c in ("ts", "value"))
        assert list(ok) == [0.0, 30.0, 30.0, 0.0, 25.0] and stats.counter_increase(np.asarray(ok)) == 55.0
        v = engine.evaluate([gate], time.time())[0]
        assert v.status == "fail" and v.values["denominator"] == 85  # 30 ok + 30 failed + 25 ok over the minute
        # judged from the restart on (as after a flip): only the restarted server's counts
        v = engine.evaluate([gate], time.time(), active_since=restarted)[0]
        assert v.status == "pass" and v.values["denominator"] == 25 and v.values["numerator"] == 0, v.reason
    finally:
        scraper.stop()

    # the playbook fired once (cooldown); the kernel flips only to a healthy standby, and alerts either way
    real = [f for f in firings if f.suppressed is None]
    assert len(real) == 1 and [a.action for a in real[0].actions] == ["flip", "alert"]
    pb = load_playbook(PLAYBOOK)
    for healthy, flip_allowed in ((True, True), (False, False)):
        state = CubeState.model_validate({
            "slots": [{"name": "A", "role": "active", "bundle_id": "sensor-1", "loaded": True, "verified": True,
                       "healthy": True},
                      {"name": "B", "role": "standby", "bundle_id": "sensor-0", "loaded": True, "verified": True,
                       "healthy": healthy}],
            "active": "A", "weights": {"active": 100.0, "standby": 0.0}, "shadow": False, "quarantine": [], "safe_mode": False,
            "generation": 1, "ts": time.time()})
        snap = kernel_snapshot(state, None, frozenset({"sensor-0"}))
        decided = {}
        for a in real[0].actions:  # as the loop proposes a playbook's actions (samantha/loop/nodes.py)
            fields = ({"target_slot": "standby", "target_bundle": "sensor-0"} if a.action == "flip"
                      else {"severity": a.severity})
            proposed = ProposedAction(kind=a.action, scope=scope_for_playbook(pb.when.scope.slot, False),
                                      requested_by="playbook", playbook=pb.name, reason=a.reason or "triton",
                                      cooldown_s=pb.limits.cooldown, max_actions_per_hour=pb.limits.max_actions_per_hour,
                                      firing="f1", **fields)
            decided[a.action] = decide(proposed, snap, [], time.time())
        assert decided["flip"].allowed is flip_allowed, decided["flip"].reasons
        assert decided["alert"].allowed
        if not healthy:
            assert "flip-target-serviceable" in decided["flip"].violated


def test_a_bad_exposition_beside_real_triton_is_named_and_the_loop_keeps_scraping(triton, store, tmp_path):
    server, key, trusted = triton
    _load(server, key, trusted, tmp_path, "good")
    _infer(server, 5)
    real = httpx.get(f"http://127.0.0.1:{server.metrics_port}/metrics").text
    lines = real.splitlines()
    k = next(i for i, ln in enumerate(lines) if ln.startswith("nv_inference_count{"))
    lines[k] = lines[k].replace("}", "", 1)  # an unclosed label set
    broken = "\n".join(lines) + "\n"

    with serve_text(broken) as broken_url:
        targets = [ScrapeTarget(name="broken", url=broken_url, slot="B"),
                   ScrapeTarget(name="triton-a", url=f"http://127.0.0.1:{server.metrics_port}/metrics", slot="A")]
        scraper = PrometheusScraper(store, targets, interval_s=0.2,
                                    slot_roles=lambda: {**ROLES, "B": {"role": "standby"}})
        try:
            scraper.start()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not ("broken" in scraper.last and "triton-a" in scraper.last):
                time.sleep(0.05)
            _infer(server, 7)
            time.sleep(1.0)  # a few more passes
        finally:
            scraper.stop()
    bad = scraper.last["broken"]
    assert bad["up"] == 1 and bad["error"] is None
    assert [r["line"] for r in bad["rejected"]] == [k + 1]
    assert bad["rejected"][0]["reason"] == "bad_exposition"
    assert bad["rejected"][0]["detail"].startswith("ValueError: could not convert string to float")
    store.flush()
    # nothing else of the broken exposition is lost; the real Triton kept being scraped in the same loop
    assert q.metric_window(store, TRITON_SUCCESS, 60, labels={"scrape_target": "broken", "role": "standby"}).last == 5
    assert q.metric_window(store, "nv_inference_count_total", 60, labels={"scrape_target": "broken"}).count == 0
    assert q.metric_window(store, TRITON_SUCCESS, 60, labels={"scrape_target": "triton-a"}).last == 12
    assert store.stats()["rejected_by_reason"]["bad_exposition"] >= 3
    ups = q.metric_window(store, "samantha_scrape_up", 60, labels={"target": "triton-a"})
    assert ups.count >= 3 and ups.last == 1.0
