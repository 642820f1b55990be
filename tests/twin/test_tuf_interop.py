"""Interoperability: TUF metadata made outside Samantha, with python-tuf's own repository API
(`tuf.repository.Repository`, as python-tuf's repository example uses it) and its own choices (Ed25519 keys,
consistent snapshots: `N.snapshot.json`, `N.targets.json`), verifies on the Cube: the TUF cache accepts it and
the daemon's bundle intake admits the bundle; a tampered target and an expired timestamp made the same way are
refused. Nothing of Samantha's hub (`samantha/hub/tuf_repo.py`) is used."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer
from tuf.repository import Repository

from samantha.cube.bundle import SIGNATURE, TUF_DIR, SigningKey
from samantha.cube.tuf_meta import TufCache, target_path
from samantha.rollout.bundle_check import BundleCatalog, BundleRejected
from samantha.twin.toy_bundle import build_bundle


class PlainRepository(Repository):
    """python-tuf's Repository with every version kept in memory (after python-tuf's examples/repository)."""

    def __init__(self) -> None:
        self.signers = {role: [CryptoSigner.generate_ed25519()] for role in ("root", "timestamp", "snapshot", "targets")}
        self.history: dict[str, list[Metadata]] = {}
        self.expiry = {"root": timedelta(days=365), "timestamp": timedelta(days=1), "snapshot": timedelta(days=7),
                       "targets": timedelta(days=7)}
        self.next_timestamp_expiry: datetime | None = None
        with self.edit_root() as root:
            root.consistent_snapshot = True
            for role, signers in self.signers.items():
                for s in signers:
                    root.add_key(s.public_key, role)
        with self.edit_targets():
            pass
        self.do_snapshot(force=True)
        self.do_timestamp(force=True)

    def open(self, role: str) -> Metadata:
        if role in self.history:
            return Metadata.from_bytes(self.history[role][-1].to_bytes())  # a copy to edit
        now = datetime.now(UTC)
        signed = {"root": lambda: Root(), "timestamp": lambda: Timestamp(), "snapshot": lambda: Snapshot(),
                  "targets": lambda: Targets()}[role]()
        signed.version = 0  # close() makes it 1
        signed.expires = now
        return Metadata(signed)

    def close(self, role: str, md: Metadata) -> None:
        md.signed.version += 1
        md.signed.expires = datetime.now(UTC).replace(microsecond=0) + self.expiry[role]
        if role == "timestamp" and self.next_timestamp_expiry is not None:
            md.signed.expires, self.next_timestamp_expiry = self.next_timestamp_expiry, None
        md.signatures.clear()
        for s in self.signers[role]:
            md.sign(s, append=True)
        self.history.setdefault(role, []).append(md)

    @property
    def targets_infos(self) -> dict[str, MetaFile]:
        return {"targets.json": MetaFile(self.history["targets"][-1].signed.version)}

    @property
    def snapshot_info(self) -> MetaFile:
        return MetaFile(self.history["snapshot"][-1].signed.version)

    def add_target(self, path: str, data: bytes) -> None:
        with self.edit_targets() as targets:
            targets.targets[path] = TargetFile.from_data(path, data, ["sha256"])
        self.do_snapshot()
        self.do_timestamp()

    def write(self, directory: Path) -> None:
        """The repository's published layout: N.root.json, timestamp.json, N.snapshot.json, N.targets.json."""
        directory.mkdir(parents=True, exist_ok=True)
        ser = JSONSerializer(compact=True)
        for md in self.history["root"]:
            (directory / f"{md.signed.version}.root.json").write_bytes(md.to_bytes(ser))
        for role in ("snapshot", "targets"):
            for md in self.history[role]:
                (directory / f"{md.signed.version}.{role}.json").write_bytes(md.to_bytes(ser))
        (directory / "timestamp.json").write_bytes(self.history["timestamp"][-1].to_bytes(ser))


@pytest.fixture()
def made_elsewhere(tmp_path: Path):
    repo = PlainRepository()
    key = SigningKey.generate(tmp_path / "keys" / "publisher.pem")
    d = tmp_path / "bundles" / "m-2"
    build_bundle(d, name="m", version="2", key=key)
    repo.add_target(target_path("m", "2"), (d / SIGNATURE).read_bytes())
    repo.write(d / TUF_DIR)
    pinned = tmp_path / "pinned-root.json"
    shutil.copy(d / TUF_DIR / "1.root.json", pinned)
    cache = TufCache(tmp_path / "cube-tuf", pinned)
    catalog = BundleCatalog(tmp_path / "bundles", tmp_path / "keys" / "publisher.pem.pub", tuf=cache)
    return repo, d, cache, catalog


def test_metadata_from_python_tufs_repository_api_verifies_on_the_cube(made_elsewhere) -> None:
    repo, d, cache, catalog = made_elsewhere
    assert json.loads((d / TUF_DIR / "1.root.json").read_text())["signed"]["consistent_snapshot"] is True
    f = cache.check(d, "m", "2")
    assert f.outcome == "ok", f.reason
    assert f.versions == {"root": 1, "timestamp": 2, "snapshot": 2, "targets": 2}
    assert catalog.verify(str(d)).bundle_id  # the daemon's intake admits it


def test_root_rotation_and_a_freeze_made_elsewhere(made_elsewhere) -> None:
    repo, d, cache, catalog = made_elsewhere
    assert cache.check(d, "m", "2").outcome == "ok"
    # rotate the root key the python-tuf way: root v2 signed by the old and the new key
    new_root = CryptoSigner.generate_ed25519()
    old_root = repo.signers["root"][0]
    with repo.edit_root() as root:
        root.revoke_key(old_root.public_key.keyid, "root")
        root.add_key(new_root.public_key, "root")
    repo.history["root"][-1].sign(new_root, append=True)
    repo.signers["root"] = [new_root]
    repo.do_timestamp(force=True)
    repo.write(d / TUF_DIR)
    f = cache.check(d, "m", "2")
    assert f.outcome == "ok" and f.versions["root"] == 2, f.reason
    # a timestamp that has expired (made by the same API): a freeze, refused, and the supply held
    repo.next_timestamp_expiry = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    repo.do_timestamp(force=True)
    repo.write(d / TUF_DIR)
    with pytest.raises(BundleRejected) as e:
        catalog.verify(str(d))
    assert e.value.kind == "frozen" and e.value.rule == "tuf-fresh" and cache.hold() is not None


def test_a_target_changed_after_publication_is_refused(made_elsewhere) -> None:
    repo, d, cache, catalog = made_elsewhere
    doc = json.loads((d / SIGNATURE).read_text())
    (d / SIGNATURE).write_text(json.dumps(doc, indent=2))  # the same signature, other bytes than published
    with pytest.raises(BundleRejected) as e:
        catalog.verify(str(d))
    assert e.value.kind == "tampered" and e.value.rule == "tuf-verified"
