"""The twin as real processes: flips, quarantine, refusals, weights, shadow, lifecycle."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import psutil
import pytest
from scipy.stats import binomtest

from samantha.core.clock import SimClock
from samantha.cube.bundle import SigningKey
from samantha.cube.protocol import CubeError
from samantha.twin import lifecycle
from samantha.twin.toy_bundle import build_bundle
from tests.twin.twinkit import Twin, twin_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _wait(pred, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_flip_and_swap_under_load_lose_no_request(twin: Twin) -> None:
    assert twin.st["proxy"]  # both slots sit behind the fault proxy
    twin.bundle("slow", latency_ms=20)  # requests are in flight at every flip and swap
    twin.cube.load("slow", request_id="load-slow")
    twin.wait_healthy()
    twin.cube.set_weights(50, request_id="w50")
    twin.set_load(rps=200)
    time.sleep(1.0)
    before = twin.loadgen_stats()
    flips = []
    for i in range(6):
        t0 = time.perf_counter()
        st = twin.cube.flip(request_id=f"flip-{i}").state
        flips.append((time.perf_counter() - t0) * 1000)
        assert st.weights.standby == 0
        time.sleep(0.3)
    twin.bundle("v3", seed=2, version="3", latency_ms=5)
    twin.cube.load("v3", request_id="swap-v3")  # graceful drain: the standby swaps bundles under traffic
    twin.cube.set_weights(50, request_id="w50-again")
    twin.cube.load("slow", request_id="swap-back")
    time.sleep(0.5)
    twin.set_load(rps=0)
    _wait(lambda: twin.loadgen_stats()["inflight"] == 0, what="load to drain")
    after = twin.loadgen_stats()
    assert after["sent"] - before["sent"] > 300
    assert after["failed"] == 0, after["statuses"]
    assert set(after["statuses"]) == {"200"}
    assert max(flips) < 1000


def test_quarantine_refuses_load_and_survives_router_restart(twin: Twin) -> None:
    bad = twin.bundle("bad", error_rate=0.5)
    st = twin.cube.load("bad", request_id="l1").state
    assert st.slot("standby").bundle_id == bad.bundle_id
    twin.cube.set_weights(25, request_id="w1")
    st = twin.cube.quarantine(bad.bundle_id, reason="errors on canary", request_id="q1").state
    assert st.is_quarantined(bad.bundle_id) and st.weights.standby == 0
    again = twin.cube.quarantine(bad.bundle_id, reason="errors on canary", request_id="q1")
    assert again.applied is False and again.state.generation == st.generation
    with pytest.raises(CubeError) as e:
        twin.cube.load("bad", request_id="l2")
    assert e.value.status == 409 and e.value.code == "quarantined" and "errors on canary" in e.value.reason
    with pytest.raises(CubeError) as e:
        twin.cube.set_weights(5, request_id="w2")
    assert e.value.code == "quarantined"
    with pytest.raises(CubeError) as e:
        twin.cube.flip(request_id="f1")
    assert e.value.code == "quarantined"
    # the router restarts (supervisor) and still remembers the quarantine
    os.kill(twin.st["children"]["router"], signal.SIGKILL)
    _wait(lambda: _state_or_none(twin) is not None and lifecycle.read_state(twin.config)["restarts"].get("router"),
          15, "router restart")
    assert twin.cube.state().is_quarantined(bad.bundle_id)
    twin.cube.release(bad.bundle_id, request_id="r1")
    assert twin.cube.load("bad", request_id="l3").state.slot("standby").bundle_id == bad.bundle_id


def _state_or_none(twin: Twin):
    try:
        return twin.cube.state()
    except CubeError:
        return None


def test_tampered_and_expired_bundles_refused_by_the_cube(twin: Twin) -> None:
    twin.bundle("tampered")
    w = Path(twin.st["bundles_dir"]) / "tampered" / "model.npz"
    data = w.read_bytes()
    w.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    key = SigningKey.load(twin.st["signing_key"])
    build_bundle(Path(twin.st["bundles_dir"]) / "old", name="sensor-mlp", version="0", key=key,
                 clock=SimClock(start=1_600_000_000.0))
    build_bundle(Path(twin.st["bundles_dir"]) / "stranger", name="sensor-mlp", version="9", key=SigningKey.generate(Path(twin.st["bundles_dir"]).parent / "stranger.pem"))
    for name, kind in (("tampered", "tampered"), ("old", "expired"), ("stranger", "unknown_key"),
                       ("missing", "malformed")):
        with pytest.raises(CubeError) as e:
            twin.cube.load(name, request_id=f"load-{name}")
        assert (e.value.status, e.value.code, e.value.field) == (422, kind, "bundle"), e.value
    assert twin.cube.state().slot("standby").bundle_version == "1"  # nothing was swapped


def test_bad_api_requests_get_4xx_with_reason(twin: Twin) -> None:
    c = httpx.Client(base_url=twin.control, timeout=5)
    cases = [
        (c.post("/v1/flip", content=b"{not json"), 400, "bad_json", None),
        (c.post("/v1/flip", json=[1]), 400, "bad_json", None),
        (c.post("/v1/flip", json={}), 422, "invalid", "request_id"),
        (c.post("/v1/weights", json={"request_id": "a1", "standby": 150}), 422, "invalid", "standby"),
        (c.post("/v1/weights", json={"request_id": "a2", "standby": "lots"}), 422, "invalid", "standby"),
        (c.post("/v1/quarantine", json={"request_id": "a3", "bundle_id": "xyz"}), 422, "invalid", "bundle_id"),
        (c.post("/v1/flip", json={"request_id": "bad id!"}), 422, "invalid", "request_id"),
        (c.post("/v1/flip", json={"request_id": "a4", "extra": 1}), 422, "invalid", "extra"),
        (c.get("/v1/flip"), 405, "method_not_allowed", None),
        (c.get("/v1/nope"), 404, "not_found", None),
    ]
    for r, status, code, field in cases:
        err = r.json()["error"]
        assert (r.status_code, err["code"], err.get("field")) == (status, code, field), r.text
        assert err["reason"]
    assert c.post("/v1/weights", json={"request_id": "w", "standby": 0}).status_code == 200
    r = c.post("/v1/flip", json={"request_id": "w"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "request_id_reused"
    r = httpx.post(f"{twin.router}/infer", json={"x": [1, 2]}, timeout=5)
    assert r.status_code == 422 and r.json()["error"]["field"] == "x"
    r = httpx.post(f"{twin.router}/infer", content=b"nope", timeout=5)
    assert r.status_code == 400
    assert httpx.post(f"{twin.router}/infer", json={"x": [0.1] * 8}, timeout=5).status_code == 200
    assert twin.cube.state().generation >= 1  # still serving after all that


def test_weight_split_is_statistically_right(twin: Twin) -> None:
    twin.bundle("v2")
    twin.cube.load("v2", request_id="l")
    twin.wait_healthy()
    for w in (5, 25):
        twin.cube.set_weights(w, request_id=f"w{w}")
        s0 = twin.router_stats()["slots"]
        twin.set_load(rps=400)
        time.sleep(4.0)
        twin.set_load(rps=0)
        _wait(lambda: twin.loadgen_stats()["inflight"] == 0, what="drain")
        s1 = twin.router_stats()["slots"]
        n_a = s1["active"]["requests"] - s0["active"]["requests"]
        n_s = s1["standby"]["requests"] - s0["standby"]["requests"]
        assert n_a + n_s > 1000
        assert binomtest(n_s, n_a + n_s, w / 100).pvalue > 0.001, (w, n_a, n_s)


@pytest.mark.timeout(60)
def test_down_leaves_no_process_even_after_supervisor_is_killed(tmp_path: Path) -> None:
    cfg = twin_config(tmp_path, rps=50)
    st = lifecycle.up(cfg)
    try:
        pids = [st["pid"], *st["children"].values()]
        assert all(psutil.pid_exists(p) for p in pids)
        assert len(lifecycle.group_members(st["pgid"])) >= 5
    finally:
        out = lifecycle.down(cfg)
    assert out["stopped"] and out["left"] == []
    _wait(lambda: not any(_running(p) for p in pids), 5, "processes to exit")
    assert lifecycle.group_members(st["pgid"]) == []
    # a supervisor killed outright takes its children with it (parent-death signal)
    st = lifecycle.up(cfg)
    children = list(st["children"].values())
    try:
        os.kill(st["pid"], signal.SIGKILL)
        _wait(lambda: not any(_running(p) for p in children), 10, "orphans to die")
    finally:
        lifecycle.down(cfg)
    # dead children of a killed parent may linger as zombies until init reaps them; none may run
    assert [p.pid for p in lifecycle.group_members(st["pgid"]) if _running(p.pid)] == []


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_fault_profiles_take_effect_in_the_slot(twin: Twin) -> None:
    infer = f"{twin.router}/infer"
    body = {"x": [0.5] * 8}
    twin.bundle("nan", nan_rate=1.0)
    twin.cube.load("nan", request_id="nan")
    twin.cube.set_weights(100, request_id="all-standby")
    r = httpx.post(infer, json=body, timeout=5)
    assert r.status_code == 502 and "non-finite" in r.json()["error"]["reason"]
    twin.bundle("slow-errors", latency_ms=120, error_rate=1.0)
    twin.cube.load("slow-errors", request_id="slow-errors")
    twin.cube.set_weights(100, request_id="all-standby-2")
    t = time.perf_counter()
    r = httpx.post(infer, json=body, timeout=5)
    assert r.status_code == 500 and time.perf_counter() - t >= 0.11
    # a crashing bundle takes its slot down; the supervisor restarts it (and it crashes again)
    twin.bundle("crash", crash_after_s=0.5)
    twin.cube.load("crash", request_id="crash")
    _wait(lambda: (lifecycle.read_state(twin.config) or {}).get("restarts", {}).get(
        f"slot-{twin.cube.state().slot('standby').name.lower()}", 0) >= 1, 15, "slot restart")
    assert httpx.post(infer, json=body, timeout=5).status_code in (200, 502)  # the active still serves
    twin.cube.set_weights(0, request_id="none-standby")
    assert httpx.post(infer, json=body, timeout=5).status_code == 200


def test_safe_mode_refuses_changes_but_allows_rollback(twin: Twin) -> None:
    twin.bundle("v2")
    twin.cube.load("v2", request_id="l")
    twin.cube.set_weights(25, request_id="w25")
    twin.cube.set_shadow(True, request_id="sh")
    st = twin.cube.safe_mode(True, request_id="safe-on").state
    assert st.safe_mode and st.weights.standby == 0 and not st.shadow
    for call, code in ((lambda: twin.cube.set_weights(5, request_id="w5"), "safe_mode"),
                       (lambda: twin.cube.load("v2", request_id="l2"), "safe_mode"),
                       (lambda: twin.cube.set_shadow(True, request_id="sh2"), "safe_mode")):
        with pytest.raises(CubeError) as e:
            call()
        assert (e.value.status, e.value.code) == (409, code)
    twin.wait_healthy()
    assert twin.cube.flip(request_id="rollback").state.active == "B"  # rollback stays possible
    st = twin.cube.safe_mode(False, request_id="safe-off").state
    assert not st.safe_mode and twin.cube.set_weights(5, request_id="w5b").state.weights.standby == 5
