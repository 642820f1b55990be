"""Policy modules distributed under TUF: a Cube with a pinned root applies a module from the hub only when the fleet's
TUF metadata lists it (target policy/<channel>.json, its canonical JSON) under fresh metadata. Real files, the real
python-tuf client and repository API, the real uplink service on a real DuckDB file; one case through a real HTTP hub
process with `samantha hub publish --tuf-repo`."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from samantha.core.config import SamanthaConfig
from samantha.core.signing import KeyPair, canonical_json, trust_public_key
from samantha.hub.tuf_repo import TufRepository
from samantha.uplink.local import local_service
from samantha.uplink.policy_module import sign_module, tuf_target
from tests.sre.kit import audit_records
from tests.uplink.kit import cli

TARGET = tuf_target("fleet")  # the Cube's uplink.channel defaults to `fleet`


def config(tmp: Path, repo: TufRepository | None, hub_url: str | None = None) -> SamanthaConfig:
    return SamanthaConfig.model_validate({
        "data_dir": str(tmp / "state"), "store": {"max_past_age_s": 30 * 86400},
        "uplink": {"hub_url": hub_url, "cube_id": "cube-t", "timeout_s": 2.0},
        **({"twin": {"tuf_root": str(repo.root_path), "tuf_cache": str(tmp / "state" / "tuf")}} if repo else {})})


@pytest.fixture
def fleet(tmp_path: Path):
    repo = TufRepository(tmp_path / "fleet-tuf")
    repo.init()
    cfg = config(tmp_path, repo)
    key = KeyPair.generate()
    trust_public_key(key.public, cfg.resolve(cfg.uplink.hub_keys))

    def module(version: int, **kw):
        now = time.time()
        return sign_module({"version": version, "issued_at": now - 10, "expires_at": now + 3600, **kw}, key)

    return repo, cfg, module


def refusals(svc) -> list[dict]:
    return [p for k, p in audit_records(svc.conn, "kind = 'policy_refused'")]


def test_listed_applies_unlisted_mismatched_and_frozen_are_refused_and_the_last_good_governs(fleet) -> None:
    repo, cfg, module = fleet
    v1, v2 = module(1), module(2)
    with local_service(cfg) as svc:
        # nothing listed yet: refused with the field and the reason, audited and alerted once
        r = svc.offer_module(v1, "hub", repo.metadata_set())
        assert (r.status, r.code, r.field) == ("refused", "tuf_not_listed", "tuf.targets"), r
        assert TARGET in r.reason and "module-tuf" in r.reason
        assert svc.offer_module(v1, "hub", repo.metadata_set()) == r  # the hub serves it again: said once
        assert len(refusals(svc)) == 1 and refusals(svc)[0]["tuf"]["outcome"] == "not_listed"
        assert [a.name for a in svc.alerts.active()].count("samantha_policy_module_refused") == 1
        assert svc.policy.current() is None

        # listed with its length and hashes: applied; the audit record names the TUF versions relied on
        repo.add_target(TARGET, canonical_json(v1))
        assert svc.offer_module(v1, "hub", repo.metadata_set()).status == "applied"
        applied = [p for k, p in audit_records(svc.conn, "kind = 'policy_applied'")]
        assert applied[-1]["tuf"]["outcome"] == "ok" and applied[-1]["tuf"]["versions"]["targets"] == 2
        assert not [a for a in svc.alerts.active() if a.name == "samantha_policy_module_refused"]
        on_disk = svc.policy.path.read_bytes()

        # v2 validly signed by the hub key, but the metadata lists v1's bytes: a hash mismatch
        r = svc.offer_module(v2, "hub", repo.metadata_set())
        assert (r.code, r.field) == ("tuf_tampered", "tuf.target"), r
        assert "module-tuf" in r.reason

        # v2 listed, but under a timestamp that has expired (a freeze): refused, v1 keeps governing
        repo.add_target(TARGET, canonical_json(v2))
        repo.refresh_timestamp(expires=datetime.now(UTC) - timedelta(seconds=1))
        r = svc.offer_module(v2, "hub", repo.metadata_set())
        assert (r.code, r.field) == ("tuf_frozen", "tuf.timestamp"), r
        assert "expired" in r.reason
        assert svc.policy.current().module.version == 1 and svc.policy.path.read_bytes() == on_disk
        assert [p["code"] for p in refusals(svc)] == ["tuf_not_listed", "tuf_tampered", "tuf_frozen"]
        assert svc.evaluate_safe_mode(time.time()).safe is False  # v1 in force and unexpired

        # fresh metadata: the same v2 is judged again and applied
        repo.refresh_timestamp()
        assert svc.offer_module(v2, "hub", repo.metadata_set()).status == "applied"
        assert svc.policy.current().module.version == 2


def test_no_metadata_malformed_metadata_and_a_rollback_are_refused(fleet, tmp_path: Path) -> None:
    repo, cfg, module = fleet
    v1 = module(1)
    with local_service(cfg) as svc:
        r = svc.offer_module(v1, "hub", None)
        assert (r.code, r.field) == ("tuf_absent", "tuf.timestamp") and "--tuf-repo" in r.reason
        r = svc.offer_module(v1, "hub", {"files": {"timestamp.json": 5}})
        assert (r.code, r.field) == ("tuf_malformed", "tuf.metadata") and "files.timestamp.json" in r.reason
        repo.add_target(TARGET, canonical_json(v1))
        old = repo.metadata_set()
        repo.refresh_timestamp()
        assert svc.offer_module(v1, "hub", repo.metadata_set()).status == "applied"
        runs: list[str] = []
        check = svc.tuf.check_target
        svc.tuf.check_target = lambda md, target, data: runs.append(target) or check(md, target, data)
        # the hub serves the same module and metadata every round: verified once, not per round
        assert svc.offer_module(v1, "hub", repo.metadata_set()).status == "unchanged" and runs == []
        # the metadata the Cube trusted before, replayed with the module in force: a rollback
        r = svc.offer_module(v1, "hub", old)
        assert (r.code, r.field) == ("tuf_rollback", "tuf.timestamp"), r
        assert runs == [TARGET]
        assert svc.policy.current().module.version == 1


def test_without_a_pinned_root_modules_apply_as_before(tmp_path: Path) -> None:
    cfg = config(tmp_path, None)
    key = KeyPair.generate()
    trust_public_key(key.public, cfg.resolve(cfg.uplink.hub_keys))
    now = time.time()
    with local_service(cfg) as svc:
        assert svc.tuf is None
        doc = sign_module({"version": 1, "issued_at": now - 10, "expires_at": now + 3600}, key)
        assert svc.offer_module(doc, "hub").status == "applied"


def test_through_the_http_hub_with_hub_publish_tuf_repo(tmp_path: Path) -> None:
    """`samantha tuf init`, `samantha hub publish --tuf-repo` (real CLI), a real HTTP hub process, the uplink's pull."""
    from samantha.harness.hub_process import spawn_hub

    repo_dir = tmp_path / "fleet-tuf"
    r = cli(["tuf", "init", "--repo", str(repo_dir)])
    assert r.returncode == 0, r.stderr
    repo = TufRepository(repo_dir)
    key = KeyPair.generate()
    key_path = tmp_path / "hub.key"
    key.save(key_path)
    body = tmp_path / "module.yaml"
    with spawn_hub(tmp_path / "hub") as hub:
        cfg = config(tmp_path, repo, hub.value)
        trust_public_key(key.public, cfg.resolve(cfg.uplink.hub_keys))
        body.write_text(yaml.safe_dump({"version": 1, "description": "under TUF"}))
        r = cli(["hub", "publish", str(body), "--key", str(key_path), "--hub", hub.value, "--tuf-repo",
                 str(repo_dir), "--valid-for", "1h", "--json"])
        assert r.returncode == 0, r.stderr + r.stdout
        assert json.loads(r.stdout)["tuf"]["target"] == TARGET
        with local_service(cfg) as svc:
            out = svc.force_sync()
            assert out["policy"]["status"] == "applied", out
            assert svc.policy.current().module.description == "under TUF"
            # a module signed by the hub key but put on the hub without the TUF repository: refused, v1 stays
            now = time.time()
            rogue = sign_module({"version": 2, "issued_at": now, "expires_at": now + 3600}, key)
            httpx.put(f"{hub.value}/v1/policy", json=rogue, timeout=10).raise_for_status()
            out = svc.force_sync()
            assert (out["policy"]["code"], out["policy"]["field"]) == ("tuf_tampered", "tuf.target"), out
            assert svc.policy.current().module.version == 1
            assert refusals(svc)[-1]["source"] == "hub"
            # published properly: applied on the next pull
            body.write_text(yaml.safe_dump({"version": 3}))
            r = cli(["hub", "publish", str(body), "--key", str(key_path), "--hub", hub.value, "--tuf-repo",
                     str(repo_dir), "--valid-for", "1h", "--force"])
            assert r.returncode == 0, r.stderr + r.stdout
            assert svc.force_sync()["policy"]["status"] == "applied"
            assert svc.policy.current().module.version == 3
            # a fresh timestamp published on the hub (the freeze window restarts): the Cube trusts it at the next pull
            before = repo.load("timestamp").signed.version
            r = cli(["tuf", "timestamp", "--repo", str(repo_dir), "--hub", hub.value])
            assert r.returncode == 0 and "published on" in r.stdout, r.stderr + r.stdout
            served = json.loads(httpx.get(f"{hub.value}/v1/policy/tuf", timeout=10).json()["files"]["timestamp.json"])
            assert served["signed"]["version"] == before + 1
            assert svc.force_sync()["policy"]["status"] == "unchanged"
            assert svc.tuf.status()["roles"]["timestamp"]["version"] == before + 1
        # bad input: --tuf-repo that holds no repository, refused (2) before anything is published
        body.write_text(yaml.safe_dump({"version": 4}))
        r = cli(["hub", "publish", str(body), "--key", str(key_path), "--hub", hub.value, "--tuf-repo",
                 str(tmp_path / "nowhere")])
        assert r.returncode == 2 and "--tuf-repo" in r.stdout + r.stderr, r.stderr + r.stdout
        assert httpx.get(f"{hub.value}/v1/policy", timeout=10).json()["version"] == 3
        # the hub checks the shape of what it carries, naming the field
        bad = httpx.put(f"{hub.value}/v1/policy/tuf", json={"files": []}, timeout=10)
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "files", bad.text


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_over_nats_publish_and_promote_list_the_module_and_a_raw_copy_is_refused(tmp_path: Path) -> None:
    """The NATS hub carries the metadata set on samantha.policy._tuf; `hub publish`/`hub promote --tuf-repo` list
    each channel's module. A module copied onto the channel by broker access fails TUF before any other check."""
    import asyncio

    import nats

    from samantha.core import fleet as wire
    from samantha.harness.hub_process import spawn_nats_hub
    from samantha.hub import nats_ops

    repo = TufRepository(tmp_path / "fleet-tuf")
    repo.init()
    key = KeyPair.generate()
    key.save(key_path := tmp_path / "hub.key")
    with spawn_nats_hub(tmp_path / "hub") as hub:
        cfg = config(tmp_path, repo, hub.value)
        trust_public_key(key.public, cfg.resolve(cfg.uplink.hub_keys))
        (body := tmp_path / "module.yaml").write_text(yaml.safe_dump({"version": 1}))
        r = cli(["hub", "publish", str(body), "--key", str(key_path), "--hub", hub.value, "--channel", "staging",
                 "--tuf-repo", str(repo.dir)])
        assert r.returncode == 0, r.stderr + r.stdout
        staged = nats_ops.current_policy(hub.value, "staging")

        async def copy_raw() -> None:
            nc = await nats.connect(hub.value)
            try:
                await nc.jetstream(domain=wire.DOMAIN).publish(wire.policy_subject("fleet"), json.dumps(staged).encode())
            finally:
                await nc.close()

        with local_service(cfg) as svc:
            asyncio.run(copy_raw())
            out = svc.force_sync(max_seconds=10)["policy"]
            assert (out["code"], out["field"]) == ("tuf_not_listed", "tuf.targets"), out  # no policy/fleet.json yet
            r = cli(["hub", "promote", "--from", "staging", "--to", "fleet", "--key", str(key_path), "--hub",
                     hub.value, "--tuf-repo", str(repo.dir), "--json"])
            assert r.returncode == 0, r.stderr + r.stdout
            assert json.loads(r.stdout)["tuf"]["target"] == TARGET
            out = svc.force_sync(max_seconds=10)["policy"]
            assert out["status"] == "applied" and svc.policy.current().module.channels == ["staging", "fleet"], out
            asyncio.run(copy_raw())  # the staging copy again, now that fleet lists the promoted module
            out = svc.force_sync(max_seconds=10)["policy"]
            assert (out["code"], out["field"]) == ("tuf_tampered", "tuf.target"), out
            assert svc.policy.current().module.channels == ["staging", "fleet"]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_daemon_applies_a_listed_module_and_keeps_running_on_a_refused_one(tmp_path: Path) -> None:
    """`samantha run` with a pinned root, beside the twin and a real HTTP hub: its uplink shares the intake's cache."""
    from samantha.api.client import auth_headers
    from tests.sre.kit import wait_for
    from tests.uplink.kit import hub_twin_daemon, publish_module

    repo = TufRepository(tmp_path / "fleet-tuf")
    repo.init()
    tuf = {"tuf_root": str(repo.root_path)}
    with hub_twin_daemon(tmp_path, "cube-tuf", twin=tuf) as (hub_url, hub_key_path, operator, twin, d):
        def st():
            return httpx.get(f"{d.url}/v1/uplink/status", timeout=10, headers=auth_headers(d.config)).json()

        publish_module(tmp_path, hub_url, hub_key_path, 1, "1h", operator, "--tuf-repo", str(repo.dir))
        wait_for(lambda: st()["policy"].get("version") == 1, 30, "module v1 applied")
        now = time.time()
        rogue = sign_module({"version": 2, "issued_at": now, "expires_at": now + 3600}, KeyPair.load(hub_key_path))
        httpx.put(f"{hub_url}/v1/policy", json=rogue, timeout=10).raise_for_status()
        s = wait_for(lambda: (x := st())["last_offer"] and x["last_offer"].get("code") == "tuf_tampered" and x, 30,
                     "the unlisted module refused")
        assert s["last_offer"]["field"] == "tuf.target" and s["policy"]["version"] == 1
        assert any(a["name"] == "samantha_policy_module_refused" for a in s["alerts"])
        assert s["safe_mode"]["safe"] is False
        publish_module(tmp_path, hub_url, hub_key_path, 3, "1h", operator, "--tuf-repo", str(repo.dir), "--force")
        wait_for(lambda: st()["policy"].get("version") == 3, 30, "module v3 applied")
        # the refusals' alerts resolve with the apply (status may be read between the two: wait, bounded)
        wait_for(lambda: not any(a["name"] == "samantha_policy_module_refused" for a in st()["alerts"]), 10,
                 "the refusal alerts resolved once v3 applied")
        assert d.proc.poll() is None
    trusted = json.loads((tmp_path / "state" / "tuf" / "targets.json").read_text())
    assert TARGET in trusted["signed"]["targets"]  # the daemon's one TUF cache (twin.tuf_cache under data_dir)
