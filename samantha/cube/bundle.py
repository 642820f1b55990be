"""Signed model bundles: write, sign, verify, load. The Cube's bundle contract, for every runtime.

A bundle is a directory: `manifest.json` plus the files it lists (model weights).
The manifest carries name, version, the sha256 of every file, created/expires
times, an optional fault profile and an ed25519 signature over the canonical
manifest. A bundle's identity is the sha256 of its canonical manifest without the
signature, so re-signing does not launder a quarantined bundle.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from samantha.core.clock import REAL_CLOCK, Clock
from samantha.core.signing import (
    KeyPair,
    PublicKey,
    SignatureError,
    canonical_json,
    load_public_keys,
    sha256_hex,
    sign_document,
    trust_public_key,
    verify_document,
)
from samantha.cube.fault_profile import FaultProfile

MANIFEST = "manifest.json"
WEIGHTS = "model.npz"
FORMAT = "samantha-bundle/1"
MAX_FILE_BYTES = 64 * 1024 * 1024

RejectKind = Literal["malformed", "unknown_key", "bad_signature", "tampered", "expired", "quarantined"]


class BundleError(ValueError):
    """A bundle that must not be loaded. `kind` is machine-readable; the message says why."""

    def __init__(self, kind: RejectKind, message: str):
        self.kind = kind
        super().__init__(f"{kind}: {message}")


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["samantha-bundle/1"] = FORMAT
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    version: str = Field(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
    created_at: datetime
    expires_at: datetime
    files: dict[str, str] = Field(min_length=1, description="relative file name -> sha256 hex")
    fault_profile: FaultProfile | None = None
    signature: dict[str, Any] | None = None

    @field_validator("created_at", "expires_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("must carry a timezone (e.g. 2030-01-01T00:00:00Z)")
        return v

    @field_validator("files")
    @classmethod
    def _files(cls, v: dict[str, str]) -> dict[str, str]:
        for name, digest in v.items():
            if name == MANIFEST or "/" in name or "\\" in name or name.startswith("."):
                raise ValueError(f"file name {name!r} must be a plain file name other than {MANIFEST}")
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"sha256 of {name!r} must be 64 lowercase hex digits")
        return v

    def body(self) -> dict[str, Any]:
        """The signed content: everything but the signature, JSON-ready."""
        return self.model_dump(mode="json", exclude={"signature"}, exclude_none=True)

    @property
    def bundle_id(self) -> str:
        return sha256_hex(canonical_json(self.body()))

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class VerifiedBundle:
    path: Path
    manifest: Manifest
    key_id: str
    files: dict[str, bytes]  # the bytes that were hashed: load these, never re-read the disk

    @property
    def bundle_id(self) -> str:
        return self.manifest.bundle_id

    @property
    def profile(self) -> FaultProfile:
        return self.manifest.fault_profile or FaultProfile()


def _write_manifest(directory: Path, doc: dict[str, Any]) -> None:
    tmp = directory / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, directory / MANIFEST)


def write_bundle(directory: str | Path, files: dict[str, bytes], *, name: str, version: str,
                 profile: FaultProfile | None = None, ttl: timedelta = timedelta(days=30),
                 key: KeyPair | None = None, clock: Clock = REAL_CLOCK) -> Manifest:
    """Write `files` and their manifest into `directory`; sign when `key` is given."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for fname, data in files.items():
        (d / fname).write_bytes(data)
    now = datetime.fromtimestamp(clock.time(), UTC).replace(microsecond=0)
    manifest = Manifest(name=name, version=version, created_at=now, expires_at=now + ttl,
                        files={fname: sha256_hex(data) for fname, data in files.items()},
                        fault_profile=profile if profile and not profile.is_clean() else None)
    _write_manifest(d, manifest.body())
    return sign_bundle(d, key) if key else manifest


def sign_bundle(directory: str | Path, key: KeyPair) -> Manifest:
    """(Re-)sign the manifest in place. The files' hashes are recomputed and must match."""
    d = Path(directory)
    manifest = read_manifest(d)
    _check_files(d, manifest)
    signed = sign_document(manifest.body(), key)
    _write_manifest(d, signed)
    return Manifest.model_validate(signed)


def read_manifest(directory: str | Path) -> Manifest:
    return _read_manifest(Path(directory))[1]


def _read_manifest(directory: Path) -> tuple[dict[str, Any], Manifest]:
    p = directory / MANIFEST
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise BundleError("malformed", f"cannot read {p}: {e.strerror or e}") from None
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError("malformed", f"{MANIFEST} is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise BundleError("malformed", f"{MANIFEST} must be a JSON object")
    try:
        return doc, Manifest.model_validate(doc)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise BundleError("malformed", f"{MANIFEST} field {where}: {first['msg']}") from None


def _check_files(d: Path, manifest: Manifest) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for name, digest in sorted(manifest.files.items()):
        p = d / name
        try:
            if p.stat().st_size > MAX_FILE_BYTES:
                raise BundleError("tampered", f"{name} is larger than {MAX_FILE_BYTES} bytes")
            data = p.read_bytes()
        except OSError as e:
            raise BundleError("tampered", f"listed file {name} cannot be read: {e.strerror or e}") from None
        if sha256_hex(data) != digest:
            raise BundleError("tampered", f"{name} sha256 does not match the manifest")
        files[name] = data
    extra = sorted(p.name for p in d.iterdir() if p.name not in manifest.files and p.name != MANIFEST)
    if extra:
        raise BundleError("tampered", f"files not listed in the manifest: {', '.join(extra)}")
    return files


def verify_bundle(directory: str | Path, trusted: dict[str, PublicKey], *, clock: Clock = REAL_CLOCK) -> VerifiedBundle:
    """Every check a Cube makes before loading; raises BundleError naming the first failure.

    Order: manifest well-formed, signature by a trusted key, files intact, not expired.
    """
    d = Path(directory)
    if not d.is_dir():
        raise BundleError("malformed", f"{d} is not a bundle directory")
    doc, manifest = _read_manifest(d)
    if manifest.signature is None:
        raise BundleError("bad_signature", "the manifest is not signed")
    try:
        key_id = verify_document(doc, trusted)  # over the bytes as written, not a re-serialisation
    except SignatureError as e:
        kind: RejectKind = "unknown_key" if "unknown signing key" in str(e) else "bad_signature"
        raise BundleError(kind, str(e)) from None
    files = _check_files(d, manifest)
    now = datetime.fromtimestamp(clock.time(), UTC)
    if now >= manifest.expires_at:
        raise BundleError("expired", f"{manifest.label} expired at {manifest.expires_at.isoformat()}")
    return VerifiedBundle(path=d.resolve(), manifest=manifest, key_id=key_id, files=files)


def load_trusted_keys(path: str | Path) -> dict[str, PublicKey]:
    """Trusted publisher keys: a directory of `*.pub` files, or one file with a base64 key per line."""
    return load_public_keys(path)


def trust_key(key: KeyPair, keys_dir: str | Path) -> Path:
    """Add a publisher's public key to a trusted-keys directory."""
    return trust_public_key(key.public, keys_dir)
