"""A Cube runtime in front of two real tritonservers: V2 requests pass through the twin's router, loads go
through the triton-repository adapter, shadow answers are checked against the model's metadata, and
bad bundles are refused with the field named while the active slot keeps serving."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from samantha.cube.bundle import SigningKey, sign_bundle, trust_key
from samantha.cube.fault_profile import FaultProfile
from samantha.cube.triton_bundle import build_triton_bundle
from samantha.harness.triton_process import TritonServer, TritonUnavailable, find_triton

pytestmark = pytest.mark.slow
X = {"inputs": [{"name": "x", "shape": [8], "datatype": "FP32", "data": [0.5, -0.2, 0.1, 0.9, 0.0, 0.3, -0.7, 0.4]}]}


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    root = tmp_path_factory.mktemp("cube")
    try:
        find_triton()
        a = TritonServer(root, "A").start()
        b = TritonServer(root, "B").start()
    except TritonUnavailable as e:
        pytest.skip(f"Triton cannot start here: {e}")
    key = SigningKey.generate(root / "k.pem")
    trust_key(key, root / "trusted")
    port_file = root / "runtime.port"
    proc = subprocess.Popen([sys.executable, "-m", "samantha.twin.cube_runtime", "--port", "0", "--control-port", "0",
                             "--slot-a-url", a.url, "--slot-a-repo", str(a.repository),
                             "--slot-b-url", b.url, "--slot-b-repo", str(b.repository),
                             "--trusted", str(root / "trusted"), "--state-file", str(root / "runtime.json"),
                             "--bundles-dir", str(root), "--port-file", str(port_file), "--ready-timeout", "30"],
                            stdout=(root / "runtime.log").open("ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not port_file.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    ports = json.loads(port_file.read_text())
    c = httpx.Client(timeout=60)
    env = {"root": root, "key": key, "a": a, "b": b, "http": c, "proc": proc,
           "data": f"http://127.0.0.1:{ports['router_port']}", "ctl": f"http://127.0.0.1:{ports['control_port']}"}
    yield env
    c.close()
    proc.terminate()
    proc.wait(10)
    a.stop()
    b.stop()


def _op(env, op, **body):
    return env["http"].post(f"{env['ctl']}/v1/{op}", json={"request_id": str(uuid.uuid4()), **body})


def _bundle(env, name, version, **kw):
    build_triton_bundle(env["root"] / name, name="sensor", version=version, key=env["key"], **kw)
    return name


def _infer(env, n):
    return [env["http"].post(f"{env['data']}/v2/models/sensor/infer", json=X) for _ in range(n)]


def _stats(env):
    return env["http"].get(f"{env['ctl']}/v1/twin/stats").json()["slots"]


def test_real_triton_cube_rollout_shadow_flip_and_bad_bundles(cube):
    env = cube
    # first bundle: into the standby, then promoted; V2 traffic passes through unchanged
    r = _op(env, "load", bundle=_bundle(env, "v1", "1"))
    assert r.status_code == 200, r.text
    assert _op(env, "flip").status_code == 200
    answers = _infer(env, 20)
    assert all(a.status_code == 200 for a in answers)
    assert answers[0].json()["outputs"][0]["name"] == "probs" and answers[0].headers["x-cube-slot"] == "B"

    # a good canary in shadow: no errors, divergence small (same model, other seed), then 50 % and a flip
    assert _op(env, "load", bundle=_bundle(env, "v2", "2", seed=0)).status_code == 200
    assert _op(env, "shadow", enabled=True).status_code == 200
    _infer(env, 30)
    time.sleep(0.3)
    shadow = _stats(env)["shadow"]
    assert shadow["requests"] >= 25 and shadow["errors"] == 0 and shadow["divergence_mean"] < 0.01
    assert _op(env, "weights", standby=50).status_code == 200
    assert {a.headers["x-cube-slot"] for a in _infer(env, 40)} == {"A", "B"}
    assert _op(env, "flip").json()["state"]["active"] == "A"

    # a NaN canary: every shadow answer is an error; quarantined, then refused on reload
    before = _stats(env)["shadow"]
    assert _op(env, "load", bundle=_bundle(env, "nan", "3", profile=FaultProfile(nan_rate=1.0))).status_code == 200
    assert _op(env, "shadow", enabled=True).status_code == 200
    assert all(a.status_code == 200 for a in _infer(env, 20))  # the active answers; the shadow never leaks
    time.sleep(0.3)
    after = _stats(env)["shadow"]
    assert after["errors"] - before["errors"] >= 18
    state = env["http"].get(f"{env['ctl']}/v1/state").json()
    bad_id = next(s["bundle_id"] for s in state["slots"] if s["role"] == "standby")
    assert _op(env, "quarantine", bundle_id=bad_id, reason="NaN outputs").status_code == 200
    r = _op(env, "load", bundle="nan")
    assert r.status_code == 409 and r.json()["error"]["code"] == "quarantined"

    # a changed output shape: the load takes (Triton serves it), the shadow divergence reads 1
    assert _op(env, "load", bundle=_bundle(env, "shape", "4", dims=4)).status_code == 200
    assert _op(env, "shadow", enabled=True).status_code == 200
    base = _stats(env)["shadow"]["requests"]
    _infer(env, 20)
    time.sleep(0.3)
    s = _stats(env)["shadow"]
    assert s["requests"] - base >= 18 and s["divergence_mean"] > 0.1  # mean over the window: 1.0 per request

    # bad input: a malformed config.pbtxt never reaches Triton; a load Triton refuses leaves the standby empty
    _bundle(env, "malformed", "5")
    (env["root"] / "malformed" / "config.pbtxt").write_text('backend: "python"\n')
    sign_bundle(env["root"] / "malformed", env["key"])
    r = _op(env, "load", bundle="malformed")
    assert r.status_code == 422 and r.json()["error"]["field"] == "bundle" and "config.pbtxt" in r.text
    _bundle(env, "refused", "6")
    (env["root"] / "refused" / "config.pbtxt").write_text(
        'name: "sensor"\nbackend: "no_such_backend"\nmax_batch_size: 0\n')
    sign_bundle(env["root"] / "refused", env["key"])
    r = _op(env, "load", bundle="refused")
    assert r.status_code == 422 and r.json()["error"]["code"] == "triton_refused", r.text
    state = env["http"].get(f"{env['ctl']}/v1/state").json()
    standby = next(s for s in state["slots"] if s["role"] == "standby")
    assert standby["bundle_id"] is None and state["active"] == "A"
    assert all(a.status_code == 200 for a in _infer(env, 5))  # the active is untouched
    assert env["proc"].poll() is None


def test_a_killed_active_triton_reads_unhealthy_and_the_flip_keeps_serving(cube):
    """Runs last in the module: it kills the active slot's server."""
    env = cube
    state = env["http"].get(f"{env['ctl']}/v1/state").json()
    if next(s for s in state["slots"] if s["role"] == "standby")["bundle_id"] is None:
        assert _op(env, "load", bundle=_bundle(env, "v7", "7")).status_code == 200
    active = state["active"]
    env[active.lower()].kill()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        slot = next(s for s in env["http"].get(f"{env['ctl']}/v1/state").json()["slots"] if s["name"] == active)
        if not slot["healthy"]:
            break
        time.sleep(0.1)
    assert not slot["healthy"] and "does not answer" in slot["health_detail"]
    failed = [a for a in _infer(env, 3) if a.status_code != 200]
    assert failed and failed[0].json()["error"]["code"] == "inference_failed"
    r = _op(env, "flip")
    assert r.status_code == 200 and r.json()["state"]["active"] != active
    assert all(a.status_code == 200 for a in _infer(env, 10))
