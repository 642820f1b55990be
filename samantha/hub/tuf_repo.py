"""The fleet's TUF repository at the central site: root, targets, snapshot and timestamp roles,
written with python-tuf's Metadata API and securesystemslib signers (no metadata format of ours).

Layout of a repository directory:
  keys/<role>.pem          the role's private key (ECDSA P-256, PKCS#8 PEM; keep offline for root)
  metadata/N.root.json     every root version (a Cube walks the chain N+1, N+2, ... to rotate)
  metadata/{root,timestamp,snapshot,targets}.json
`carry(bundle_dir)` copies the metadata into the bundle's `tuf/`, which travels with it; `metadata_set()` is the
same files as one document, which the hub serves beside the policy module.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

ROLES = ("root", "targets", "snapshot", "timestamp")
# how long each role stays valid by default: timestamp short (freeze window), root long (offline key)
DEFAULT_TTL = {"root": timedelta(days=365), "targets": timedelta(days=90), "snapshot": timedelta(days=30),
               "timestamp": timedelta(days=7)}
_JSON = JSONSerializer(compact=False)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class TufRepository:
    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self.meta_dir, self.keys_dir = self.dir / "metadata", self.dir / "keys"

    @classmethod
    def existing(cls, directory: str | Path) -> TufRepository:
        """A repository `init` made, or a ValueError saying how to make one."""
        r = cls(directory)
        if not (r.meta_dir / "root.json").is_file():
            raise ValueError(f"{directory} holds no TUF repository (samantha tuf init --repo {directory})")
        return r

    # -- keys ---------------------------------------------------------------------------------
    def _signer(self, role: str) -> CryptoSigner:
        priv = serialization.load_pem_private_key((self.keys_dir / f"{role}.pem").read_bytes(), None)
        return CryptoSigner(priv)  # type: ignore[arg-type]

    def _new_key(self, role: str) -> CryptoSigner:
        signer = CryptoSigner.generate_ecdsa()
        self.keys_dir.mkdir(parents=True, exist_ok=True)
        p = self.keys_dir / f"{role}.pem"
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(signer.private_bytes)
        return signer

    # -- metadata files -----------------------------------------------------------------------
    def load(self, role: str) -> Metadata:
        return Metadata.from_file(str(self.meta_dir / f"{role}.json"))

    def _write(self, md: Metadata, *signers: CryptoSigner) -> None:
        md.signatures.clear()
        for s in signers:
            md.sign(s, append=True)
        self.meta_dir.mkdir(parents=True, exist_ok=True)
        name = md.signed.type
        md.to_file(str(self.meta_dir / f"{name}.json"), _JSON)
        if name == "root":
            md.to_file(str(self.meta_dir / f"{md.signed.version}.root.json"), _JSON)

    def init(self, *, ttl: dict[str, timedelta] | None = None) -> Metadata:
        """A new repository: one fresh key per role, threshold 1, empty targets."""
        ttl = {**DEFAULT_TTL, **(ttl or {})}
        now = _now()
        signers = {role: self._new_key(role) for role in ROLES}
        root = Root(expires=now + ttl["root"], consistent_snapshot=False)
        for role, s in signers.items():
            root.add_key(s.public_key, role)
        md = Metadata(root)
        self._write(md, signers["root"])
        self._write(Metadata(Targets(expires=now + ttl["targets"])), signers["targets"])
        self._write(Metadata(Snapshot(expires=now + ttl["snapshot"])), signers["snapshot"])
        self._write(Metadata(Timestamp(expires=now + ttl["timestamp"])), signers["timestamp"])
        return md

    def add_target(self, path: str, data: bytes, *, ttl: timedelta | None = None) -> None:
        """List (or replace) a target, then publish: targets, snapshot and timestamp are re-signed."""
        md = self.load("targets")
        md.signed.targets[path] = TargetFile.from_data(path, data, ["sha256"])
        md.signed.version += 1
        md.signed.expires = _now() + (ttl or DEFAULT_TTL["targets"])
        self._write(md, self._signer("targets"))
        self.publish()

    def publish(self, *, timestamp_ttl: timedelta | None = None, expires: datetime | None = None) -> None:
        """A new snapshot over the current targets and a new timestamp over it (`expires`: an explicit
        timestamp expiry, e.g. one in the past to rehearse a freeze)."""
        targets = self.load("targets")
        snap = self.load("snapshot")
        snap.signed.meta["targets.json"] = MetaFile(version=targets.signed.version)
        snap.signed.version += 1
        snap.signed.expires = _now() + DEFAULT_TTL["snapshot"]
        self._write(snap, self._signer("snapshot"))
        self.refresh_timestamp(ttl=timestamp_ttl, expires=expires)

    def refresh_timestamp(self, *, ttl: timedelta | None = None, expires: datetime | None = None) -> None:
        snap = self.load("snapshot")
        ts = self.load("timestamp")
        ts.signed.snapshot_meta = MetaFile(version=snap.signed.version)
        ts.signed.version += 1
        ts.signed.expires = expires or _now() + (ttl or DEFAULT_TTL["timestamp"])
        self._write(ts, self._signer("timestamp"))

    def rotate(self, role: str) -> None:
        """Replace a role's key with a fresh one in a new root version. The new root is signed by the
        old and the new root keys (so a Cube trusting the old root accepts it); then every role whose
        key changed is re-signed."""
        old_root = self._signer("root")
        root = self.load("root")
        old_keyids = list(root.signed.roles[role].keyids)
        new = self._new_key(role)
        for kid in old_keyids:
            root.signed.revoke_key(kid, role)
        root.signed.add_key(new.public_key, role)
        root.signed.version += 1
        signers = [old_root, new] if role == "root" else [old_root]
        self._write(root, *signers)
        if role in ("targets", "snapshot", "timestamp"):
            md = self.load(role)
            md.signed.version += 1
            self._write(md, new)
            if role in ("targets", "snapshot"):
                self.publish()
            else:
                self.refresh_timestamp()

    def _carried(self) -> list[Path]:
        # every file but root.json: the Cube walks N.root.json from its own trusted root
        return [p for p in sorted(self.meta_dir.glob("*.json")) if p.name != "root.json"]

    def carry(self, bundle_dir: str | Path) -> Path:
        """Copy the metadata into `<bundle>/tuf/` (what a Cube verifies offline)."""
        dest = Path(bundle_dir) / "tuf"
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for p in self._carried():
            shutil.copy2(p, dest / p.name)
        return dest

    def metadata_set(self) -> dict[str, dict[str, str]]:
        """The same files as one JSON document, `{"files": {name: text}}`: what the hub serves beside the policy
        module (HTTP `GET /v1/policy/tuf`, NATS `samantha.policy._tuf`); the transport only carries it."""
        return {"files": {p.name: p.read_text() for p in self._carried()}}

    @property
    def root_path(self) -> Path:
        """The root to pin on a Cube at provisioning (`twin.tuf_root`)."""
        return self.meta_dir / "1.root.json"
