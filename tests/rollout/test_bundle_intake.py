"""The daemon's bundle intake (`BundleCatalog.verify`) over real files: a real TUF repository (python-tuf's
Metadata API), real model-signing bundles, the Cube's real TUF cache; the kernel's `judge_intake` decides.
Migration: without a pinned root, bundles without tuf/ keep working; with one, they are refused with the
upgrade path. Every refusal and hold change is reported to `on_event` (the daemon audits and alerts it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from samantha.cube.bundle import SIGNATURE, TUF_DIR, SigningKey
from samantha.cube.tuf_meta import TufCache, target_path
from samantha.hub.tuf_repo import TufRepository
from samantha.rollout.bundle_check import BundleCatalog, BundleRejected
from samantha.twin.toy_bundle import build_bundle


@pytest.fixture()
def site(tmp_path: Path):
    repo = TufRepository(tmp_path / "repo")
    repo.init()
    key = SigningKey.generate(tmp_path / "keys" / "publisher.pem")

    def bundle(version: str, *, publish: bool = True, signer: SigningKey = key) -> Path:
        d = tmp_path / "bundles" / f"m-{version}"
        build_bundle(d, name="m", version=version, key=signer)
        if publish:
            repo.add_target(target_path("m", version), (d / SIGNATURE).read_bytes())
            repo.carry(d)
        return d

    events: list[tuple[str, dict[str, Any]]] = []
    cache = TufCache(tmp_path / "state" / "tuf", repo.root_path)
    catalog = BundleCatalog(tmp_path / "bundles", tmp_path / "keys" / "publisher.pem.pub", tuf=cache,
                            on_event=lambda e, r: events.append((e, r)))
    return repo, bundle, catalog, cache, events, tmp_path


def refused(catalog: BundleCatalog, ref: str) -> BundleRejected:
    with pytest.raises(BundleRejected) as e:
        catalog.verify(ref)
    return e.value


def test_without_a_pinned_root_old_bundles_keep_working(site) -> None:
    _, bundle, _, _, _, tmp = site
    plain = BundleCatalog(tmp / "bundles", tmp / "keys" / "publisher.pem.pub")
    assert plain.verify(str(bundle("1", publish=False))).label.endswith("1")
    assert plain.verify(str(bundle("2"))).bundle_id  # tuf/ carried, not required: signature only


def test_a_pinned_root_refuses_a_bundle_without_metadata_with_the_upgrade_path(site) -> None:
    _, bundle, catalog, _, events, _ = site
    e = refused(catalog, str(bundle("1", publish=False)))
    assert e.kind == "malformed" and e.rule == "tuf-required"
    assert "carry tuf/" in e.reason and "TUF repository" in e.reason
    assert [ev for ev, _ in events] == ["bundle_refused"] and events[0][1]["rule"] == "tuf-required"
    assert catalog.verify(str(bundle("2"))).bundle_id  # published and carried: admitted


def test_rollback_refused_and_an_untrusted_key_refused_after_tuf(site) -> None:
    repo, bundle, catalog, _, events, tmp = site
    v2 = bundle("2")
    replay = tmp / "bundles" / "replay"
    shutil.copytree(v2, replay)  # the metadata as it was
    repo.refresh_timestamp()
    repo.carry(v2)
    catalog.verify(str(v2))  # the Cube now trusts the newer timestamp
    e = refused(catalog, str(replay))
    assert e.kind == "rollback" and e.rule == "tuf-verified" and "timestamp" in e.reason
    stranger = bundle("3", signer=SigningKey.generate(tmp / "stranger.pem"))  # published, but not our key
    e = refused(catalog, str(stranger))
    assert e.kind == "unknown_key" and e.rule == "signature"
    assert [r["rule"] for ev, r in events if ev == "bundle_refused"] == ["tuf-verified", "signature"]


def test_a_freeze_holds_the_supply_until_fresh_metadata_lifts_it(site) -> None:
    repo, bundle, catalog, cache, events, _ = site
    v2 = bundle("2")
    repo.refresh_timestamp(ttl=timedelta(seconds=1))
    repo.carry(v2)
    time.sleep(1.5)  # the timestamp expires: this copy of the metadata is now a freeze
    e = refused(catalog, str(v2))
    assert e.kind == "frozen" and e.rule == "tuf-fresh" and "expired" in e.reason
    assert [ev for ev, _ in events] == ["supply_hold_set", "bundle_refused"]
    assert cache.hold() is not None and catalog.supply_hold() == cache.hold().reason
    # held: a refusal of fresh metadata keeps it, fresh metadata lifts it
    repo.refresh_timestamp()
    repo.carry(v2)
    assert catalog.verify(str(v2)).bundle_id
    assert cache.hold() is None and [ev for ev, _ in events[-2:]] == ["supply_hold_cleared", "tuf_verified"]
    assert catalog.supply_hold() is None
    assert cache.status()["roles"]["timestamp"]["version"] == 4 and cache.status()["hold"] is None


def test_unreadable_bundle_json_with_metadata_is_refused_by_tuf(site) -> None:
    _, bundle, catalog, _, _, _ = site
    v2 = bundle("2")
    (v2 / "bundle.json").write_text("{")
    e = refused(catalog, str(v2))
    assert e.rule == "tuf-verified" and e.kind == "malformed" and "cannot name the target" in e.reason
    shutil.rmtree(v2 / TUF_DIR)
    assert refused(catalog, str(v2)).rule == "tuf-required"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "samantha", *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd)


@pytest.mark.timeout(120)
def test_tuf_cli_publishes_and_reports_what_the_cube_trusts(tmp_path: Path) -> None:
    repo = tmp_path / "fleet-tuf"
    assert cli("tuf", "init", "--repo", str(repo), cwd=tmp_path).returncode == 0
    key = SigningKey.generate(tmp_path / "keys" / "publisher.pem")
    b = tmp_path / "bundles" / "m-2"
    build_bundle(b, name="m", version="2", key=key)
    r = cli("tuf", "publish", str(b), "--repo", str(repo), cwd=tmp_path)
    assert r.returncode == 0 and (b / TUF_DIR / "timestamp.json").is_file(), r.stderr
    (tmp_path / "samantha.yaml").write_text(yaml.safe_dump({"data_dir": str(tmp_path / "state"), "twin": {
        "tuf_root": str(repo / "metadata" / "1.root.json"), "trusted_keys": f"{key.path}.pub"}}))
    cfg = tmp_path / "samantha.yaml"
    before = json.loads(cli("tuf", "status", "--json", "-c", str(cfg), cwd=tmp_path).stdout)
    assert before["roles"]["root"]["version"] == 1 and before["roles"]["timestamp"] is None
    # `tuf check`: what the intake would decide, on a scratch copy (the Cube's cache is not touched)
    r = cli("tuf", "check", str(b), "--json", "-c", str(cfg), cwd=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["versions"]["timestamp"] == 2, r.stderr
    assert json.loads(cli("tuf", "status", "--json", "-c", str(cfg), cwd=tmp_path).stdout)["roles"]["timestamp"] is None
    plain = tmp_path / "bundles" / "m-1"
    build_bundle(plain, name="m", version="1", key=key)
    r = cli("tuf", "check", str(plain), "--json", "-c", str(cfg), cwd=tmp_path)
    assert r.returncode == 1 and json.loads(r.stdout)["rule"] == "tuf-required", r.stdout
    # the daemon's intake (as configured) admits it; the cache now trusts the published versions
    from samantha.core.config import load_config
    from samantha.cube.tuf_meta import tuf_cache

    conf = load_config(cfg)
    BundleCatalog(tmp_path / "bundles", conf.twin.trusted_keys, tuf=tuf_cache(conf)).verify(str(b))
    after = json.loads(cli("tuf", "status", "--json", "-c", str(cfg), cwd=tmp_path).stdout)
    assert after["roles"]["timestamp"]["version"] == 2 and after["roles"]["targets"]["targets"] == ["m-2/model.sig"]
    assert after["hold"] is None and not after["roles"]["timestamp"]["expired"]
    # bad input: exit 2 with the field named
    r = cli("tuf", "rotate", "nobody", "--repo", str(repo), cwd=tmp_path)
    assert r.returncode == 2 and "role" in r.stderr
    r = cli("tuf", "publish", str(b), "--repo", str(tmp_path / "none"), cwd=tmp_path)
    assert r.returncode == 2 and "--repo" in r.stderr
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump({"data_dir": str(tmp_path / "s2")}))
    r = cli("tuf", "status", "-c", str(tmp_path / "plain.yaml"), cwd=tmp_path)
    assert r.returncode == 2 and "tuf_root" in r.stderr


def test_trusted_metadata_that_expires_holds_the_supply_until_fresh_metadata(site) -> None:
    repo, bundle, catalog, cache, _, _ = site
    assert catalog.supply_hold() is None  # nothing trusted yet beyond the pinned root
    v2 = bundle("2")
    repo.refresh_timestamp(ttl=timedelta(seconds=1))
    repo.carry(v2)
    catalog.verify(str(v2))  # admitted: fresh for one second
    assert catalog.supply_hold() is None
    time.sleep(1.2)  # no new bundle: the freeze window passes on the Cube
    held = catalog.supply_hold()
    assert held is not None and "tuf-stale" in held and "timestamp" in held and cache.hold() is None
    repo.refresh_timestamp()
    repo.carry(v2)
    catalog.verify(str(v2))
    assert catalog.supply_hold() is None


def test_the_intake_bounds_each_file_by_the_configured_size(tmp_path: Path) -> None:
    """`twin.max_bundle_file_mb` reaches the daemon's intake: a file above it is refused as tampered (never
    hashed), and the same bundle passes once the bound is raised (an LLM Cube's GGUF bundles)."""
    from samantha.core.config import SamanthaConfig
    from samantha.cube.bundle import trust_key, write_bundle
    from samantha.rollout.wiring import bundle_catalog

    key = SigningKey.generate(tmp_path / "publisher.pem")
    trust_key(key, tmp_path / "trusted")
    write_bundle(tmp_path / "bundles" / "big", {"model.gguf": b"\0" * (2 * 1024 * 1024)}, name="llm", version="1",
                 key=key)

    def catalog(mb: float) -> BundleCatalog:
        return bundle_catalog(SamanthaConfig.model_validate({"data_dir": str(tmp_path), "twin": {
            "bundles_dir": "bundles", "trusted_keys": "trusted", "max_bundle_file_mb": mb}}))

    e = refused(catalog(1), "big")
    assert e.kind == "tampered" and "model.gguf is larger than 1048576 bytes" in e.reason, e
    assert catalog(3).verify("big").label.startswith("llm")
