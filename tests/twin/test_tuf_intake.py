"""TUF metadata carried with a bundle, made by python-tuf's Metadata API on the hub side (real files), verified
by python-tuf's client on the Cube side: rollback, freeze, root rotation, tampered target, below threshold."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samantha.cube.bundle import SIGNATURE, SigningKey
from samantha.cube.tuf_meta import TUF_DIR, TufCache, target_path
from samantha.hub.tuf_repo import TufRepository
from samantha.twin.toy_bundle import build_bundle


class SettableClock:
    """A wall clock that can be set back, as a dead RTC or bad NTP would."""

    def __init__(self, t: float):
        self.t = t

    def set(self, t: float) -> None:
        self.t = t

    def time(self) -> float:
        return self.t


@pytest.fixture()
def fleet(tmp_path: Path):
    repo = TufRepository(tmp_path / "repo")
    repo.init()
    key = SigningKey.generate(tmp_path / "publisher.pem")

    def bundle(name: str, version: str) -> Path:
        d = tmp_path / "bundles" / f"{name}-{version}"
        build_bundle(d, name=name, version=version, key=key)
        repo.add_target(target_path(name, version), (d / SIGNATURE).read_bytes())
        repo.carry(d)
        return d

    cache = TufCache(tmp_path / "cube-tuf", repo.root_path)
    return repo, bundle, cache, tmp_path


def test_fresh_metadata_verifies_and_a_rollback_is_refused(fleet) -> None:
    repo, bundle, cache, tmp = fleet
    v2 = bundle("m", "2")
    assert cache.check(v2, "m", "2").outcome == "ok"
    old = tmp / "replayed"
    shutil.copytree(v2, old)  # an attacker keeps this copy of the metadata
    repo.refresh_timestamp()
    repo.carry(v2)
    assert cache.check(v2, "m", "2").outcome == "ok"  # the Cube now trusts timestamp v3
    f = cache.check(old, "m", "2")
    assert f.outcome == "rollback" and f.role == "timestamp" and "version" in f.reason


def test_freeze_attack_expired_timestamp_is_frozen(fleet) -> None:
    repo, bundle, cache, _ = fleet
    v2 = bundle("m", "2")
    repo.refresh_timestamp(expires=datetime.now(UTC) - timedelta(seconds=1))
    repo.carry(v2)
    f = cache.check(v2, "m", "2")
    assert f.outcome == "frozen" and f.role == "timestamp" and "expired" in f.reason


def test_a_clock_that_falls_back_cannot_revive_expired_metadata(fleet, tmp_path: Path) -> None:
    repo, bundle, _, _ = fleet
    v2 = bundle("m", "2")
    clock = SettableClock(datetime.now(UTC).timestamp() + 30 * 86400)  # 30 days on: the 7-day timestamp expired
    cache = TufCache(tmp_path / "other-cube", repo.root_path, clock)  # type: ignore[arg-type]
    assert cache.check(v2, "m", "2").outcome == "frozen"
    clock.set(datetime.now(UTC).timestamp())  # the wall clock jumps back to "now"
    f = cache.check(v2, "m", "2")
    assert f.outcome == "frozen" and f.reference_time >= datetime.now(UTC).timestamp() + 29 * 86400


def test_root_rotation_is_honoured_and_the_old_key_then_refused(fleet) -> None:
    repo, bundle, cache, tmp = fleet
    v2 = bundle("m", "2")
    assert cache.check(v2, "m", "2").versions["root"] == 1
    old_timestamp_key = (repo.keys_dir / "timestamp.pem").read_bytes()
    repo.rotate("root")
    repo.rotate("timestamp")
    repo.carry(v2)
    f = cache.check(v2, "m", "2")
    assert f.outcome == "ok" and f.versions["root"] == 3
    # a timestamp signed with the retired key: below threshold under the new root
    (repo.keys_dir / "timestamp.pem").write_bytes(old_timestamp_key)
    repo.refresh_timestamp()
    repo.carry(v2)
    f = cache.check(v2, "m", "2")
    assert f.outcome == "below_threshold" and f.role == "timestamp"


def test_tampered_target_and_unlisted_bundle_are_refused(fleet) -> None:
    repo, bundle, cache, tmp = fleet
    v2 = bundle("m", "2")
    # re-signed after publication (a trusted key, but not the artifact the fleet published)
    SigningKey.generate(tmp / "k2.pem")
    sig = v2 / SIGNATURE
    doc = json.loads(sig.read_text())
    doc["mediaType"] = doc["mediaType"] + " "
    sig.write_text(json.dumps(doc))
    f = cache.check(v2, "m", "2")
    assert f.outcome == "tampered" and f.role == "target"
    f = cache.check(v2, "m", "9")
    assert f.outcome == "not_listed"
    shutil.rmtree(v2 / TUF_DIR)
    assert cache.check(v2, "m", "2").outcome == "absent"


def test_malformed_metadata_names_the_role(fleet) -> None:
    _, bundle, cache, _ = fleet
    v2 = bundle("m", "2")
    p = v2 / TUF_DIR / "snapshot.json"
    doc = json.loads(p.read_text())
    del doc["signed"]["meta"]
    p.write_text(json.dumps(doc))
    f = cache.check(v2, "m", "2")
    assert f.outcome in ("malformed", "tampered") and f.role == "snapshot" and f.reason


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_flipped_byte_in_carried_metadata_is_refused_or_harmless(fleet, data) -> None:
    repo, bundle, _, tmp = fleet
    v2 = tmp / "bundles" / "m-2"
    if not v2.exists():
        v2 = bundle("m", "2")
    # 1.root.json is carried but never read by a Cube pinned at root v1 (it walks 2.root.json, ...)
    files = sorted(p for p in (v2 / TUF_DIR).glob("*.json") if p.name != "1.root.json")
    p = data.draw(st.sampled_from(files))
    raw = p.read_bytes()
    i = data.draw(st.integers(0, len(raw) - 1))
    flip = data.draw(st.integers(1, 255))
    work = tmp / f"flip-{p.name}-{i}-{flip}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(v2, work)
    (work / TUF_DIR / p.name).write_bytes(raw[:i] + bytes([raw[i] ^ flip]) + raw[i + 1:])
    cache = TufCache(tmp / f"cache-{p.name}-{i}-{flip}", repo.root_path)
    f = cache.check(work, "m", "2")
    if f.outcome == "ok":  # only a flip that leaves the JSON document the same may pass (e.g. whitespace)
        try:
            same = json.loads((work / TUF_DIR / p.name).read_bytes()) == json.loads(raw)
        except ValueError:
            same = False
        assert same, f"{p.name} byte {i} ^ {flip:#x} still verified"


def test_supply_hold_parses_metadata_only_when_a_file_changes(fleet) -> None:
    """The uplink asks for the hold every tick: unchanged metadata files are not parsed again; a changed one is."""
    from samantha.rollout.bundle_check import BundleCatalog

    repo, bundle, cache, tmp = fleet
    v2 = bundle("m", "2")
    assert cache.check(v2, "m", "2").outcome == "ok"
    catalog = BundleCatalog(tmp / "bundles", tmp / "publisher.pem.pub", tuf=cache)
    assert catalog.supply_hold() is None
    first = cache.parses
    assert first == 4  # root, timestamp, snapshot, targets
    for _ in range(5):
        assert catalog.supply_hold() is None
    assert cache.parses == first  # five ticks, nothing re-read
    # the trusted timestamp is replaced by one that has already expired (what the next intake would store)
    ts = cache.dir / "timestamp.json"
    repo.refresh_timestamp(expires=datetime.now(UTC) - timedelta(seconds=1))
    shutil.copy(repo.meta_dir / "timestamp.json", ts)
    assert "tuf-stale" in (catalog.supply_hold() or "") and "timestamp" in catalog.supply_hold()
    assert cache.parses == first + 1  # only the changed file was parsed again
    assert cache.status()["roles"]["timestamp"]["expired"] is True
    assert cache.parses == first + 1
