"""TUF end to end on the real twin and a real `samantha run` daemon with a pinned root (`twin.tuf_root`) and a
real fleet TUF repository (python-tuf's Metadata API): a TUF-carried bundle rolled out to promotion; a bundle
without metadata refused with the upgrade path; a rollback refused; a root (and timestamp) key rotation
honoured with nothing touched on the Cube; a freeze (an expired timestamp) refused, which holds the supply and
puts the Cube in safe mode with the last-known-good bundle serving; fresh metadata lifts it and the rollout goes
on (admitted and started); the timestamp the Cube trusts expiring with no bundle at all (`tuf-stale`) puts it in
safe mode too, until fresh metadata arrives. Every refusal is audited and alerted (read back from the daemon's DuckDB file), the daemon keeps running."""

from __future__ import annotations

import shutil
import time
from datetime import timedelta
from pathlib import Path

import pytest

from samantha.cube.bundle import SIGNATURE, SigningKey
from samantha.cube.tuf_meta import TufCache, target_path
from samantha.hub.tuf_repo import TufRepository
from samantha.twin.toy_bundle import build_bundle
from tests.rollout.kit import Env, rollout_env, short_policy
from tests.rollout.test_rollout_twin import wait_for
from tests.sre.kit import audit_records

SHIPPED_PLAYBOOKS = Path(__file__).parents[2] / "playbooks"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


def promoted(env: Env, ref: str, rid: str) -> None:
    r = env.post("/v1/rollout/start", json={"bundle": ref, "request_id": rid})
    assert r.status_code == 200, r.text
    doc = wait_for(env.status, lambda d: d["phase"] in ("promoted", "aborted", "failed"), 150)
    assert doc["phase"] == "promoted", doc["rollout"]["reason"]


def abort(env: Env) -> None:
    r = env.post("/v1/rollout/abort", json={"reason": "next case"})
    assert r.status_code == 200 and r.json()["phase"] == "aborted", r.text


def refused(env: Env, ref: str, rid: str, code: str, rule: str) -> str:
    r = env.post("/v1/rollout/start", json={"bundle": ref, "request_id": rid})
    assert r.status_code == 422 and r.json()["error"]["code"] == code, r.text
    reason = r.json()["error"]["reason"]
    assert f"supply rule {rule}" in reason, reason
    return reason


def test_tuf_rollout_rollback_rotation_freeze_and_safe_mode(tmp_path: Path) -> None:
    repo = TufRepository(tmp_path / "fleet-tuf")
    repo.init()
    # the canary abort and the active hard-failure playbooks only: on a shared test host, the host-level
    # slowdown playbooks would hold a rollout for minutes (not what this test is about)
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    for name in ("bad-canary.yaml", "active-hard-failure.yaml"):
        shutil.copy(SHIPPED_PLAYBOOKS / name, playbooks)
    with rollout_env(tmp_path, short_policy(shadow=True, step_s=1.0, soak_s=2.0), rps=150, playbooks=playbooks,
                     twin={"tuf_root": str(repo.root_path)}) as env:
        bundles = Path(env.twin.st["bundles_dir"])
        key = SigningKey.load(env.twin.st["signing_key"])
        cfg = env.daemon.config
        cache = TufCache(cfg.resolve(cfg.twin.tuf_cache), repo.root_path)  # read-only view of the daemon's cache

        def publish(version: str) -> Path:
            d = bundles / f"v{version}"
            build_bundle(d, name="sensor-mlp", version=version, seed=0, key=key)  # the same weights: the canary gates pass
            repo.add_target(target_path("sensor-mlp", version), (d / SIGNATURE).read_bytes())
            repo.carry(d)
            return d

        # migration: a signed bundle without tuf/ on a Cube with a pinned root
        build_bundle(bundles / "plain", name="sensor-mlp", version="2", seed=0, key=key)
        reason = refused(env, "plain", "req-plain", "malformed", "tuf-required")
        assert "carry tuf/" in reason

        # a TUF-carried bundle rolled out; an attacker kept the older metadata
        v2 = publish("2")
        shutil.copytree(v2, bundles / "replay")
        repo.refresh_timestamp()
        repo.carry(v2)
        promoted(env, "v2", "req-v2")
        assert cache.status()["roles"]["timestamp"]["version"] == 3
        refused(env, "replay", "req-replay", "rollback", "tuf-verified")

        # root and timestamp keys rotated at the hub: the bundle carries root v2, v3; nothing done on the Cube
        repo.rotate("root")
        repo.rotate("timestamp")
        promoted(env, str(publish("3")), "req-v3")
        assert cache.status()["roles"]["root"]["version"] == 3
        active_v3 = env.twin.cube.state().slot("active").bundle_id

        # a freeze: metadata whose timestamp has expired (an attacker withholding the newer one)
        v4 = publish("4")
        repo.refresh_timestamp(ttl=timedelta(seconds=2))
        repo.carry(v4)
        time.sleep(2.5)
        assert "expired" in refused(env, "v4", "req-v4-frozen", "frozen", "tuf-fresh")
        up = wait_for(lambda: env.daemon.client.get("/v1/uplink/status"), lambda d: d["safe_mode"]["safe"], 30)
        assert up["safe_mode"]["cause"] == "supply" and "supply hold" in up["safe_mode"]["reason"]
        st = env.twin.cube.state()
        assert st.safe_mode and st.slot("active").bundle_id == active_v3  # last-known-good keeps serving
        assert cache.status()["hold"] is not None

        # fresh metadata lifts the hold and safe mode, and the rollout goes on
        repo.refresh_timestamp()
        repo.carry(v4)
        r = env.post("/v1/rollout/start", json={"bundle": "v4", "request_id": "req-v4-fresh"})
        assert r.status_code == 200 and r.json()["phase"] not in ("failed", "idle"), r.text  # admitted: under way
        assert not env.twin.cube.state().safe_mode and cache.status()["hold"] is None
        assert env.daemon.client.get("/v1/uplink/status")["safe_mode"]["left_because"].startswith("fresh TUF")
        abort(env)

        # the freeze window passes on the Cube itself: the timestamp it trusts expires, no bundle is refused
        v5 = publish("5")
        repo.refresh_timestamp(ttl=timedelta(seconds=8))
        repo.carry(v5)
        r = env.post("/v1/rollout/start", json={"bundle": "v5", "request_id": "req-v5-short"})
        assert r.status_code == 200, r.text  # admitted while fresh
        abort(env)
        up = wait_for(lambda: env.daemon.client.get("/v1/uplink/status"), lambda d: d["safe_mode"]["safe"], 40)
        assert up["safe_mode"]["cause"] == "supply" and "tuf-stale" in up["safe_mode"]["reason"], up["safe_mode"]
        assert env.twin.cube.state().safe_mode and cache.status()["roles"]["timestamp"]["expired"]
        repo.refresh_timestamp()
        repo.carry(v5)
        r = env.post("/v1/rollout/start", json={"bundle": "v5", "request_id": "req-v5-fresh"})
        assert r.status_code == 200, r.text
        assert not env.twin.cube.state().safe_mode

        db = env.stopped_db()
        audit = audit_records(db)
        rules = [p["rule"] for k, p in audit if k == "bundle_refused"]
        assert rules == ["tuf-required", "tuf-verified", "tuf-fresh"], rules
        kinds = [k for k, _ in audit]
        assert kinds.index("supply_hold_set") < kinds.index("safe_mode_entered") < kinds.index("supply_hold_cleared") \
            < kinds.index("safe_mode_left")
        assert kinds.count("safe_mode_entered") == 2 and kinds.count("safe_mode_left") == 2
        alerts = db.execute("SELECT key, severity FROM alerts WHERE name = 'samantha_bundle_refused'").fetchall()
        assert {k for k, _ in alerts} == {"supply:refused:tuf-required", "supply:refused:tuf-verified",
                                          "supply:refused:tuf-fresh"} and {s for _, s in alerts} == {"critical"}
