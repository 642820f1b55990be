"""Signed model bundles in the OpenSSF model-signing format: write, sign, verify, load.

A bundle is a model directory plus `model.sig`, a Sigstore bundle (DSSE envelope over an
in-toto statement) that the `model-signing` library produces over the per-file sha256
manifest of the directory. Samantha's own metadata (name, version, created/expires, fault
profile) is one more file in the directory, `bundle.json`, so it is covered by the same
signature. Signing keys are elliptic-curve (P-256) PEM keys; the Cube verifies offline
against the public keys in its trust directory.

A bundle's identity is the in-toto subject digest (a hash over the file digests), which
does not depend on the signer: re-signing does not launder a quarantined bundle.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from samantha.core.clock import REAL_CLOCK, Clock
from samantha.cube.fault_profile import FaultProfile

META = "bundle.json"
SIGNATURE = "model.sig"
OLD_MANIFEST = "manifest.json"  # samantha-bundle/1 (ed25519 over a canonical manifest): refused, see docs
WEIGHTS = "model.npz"
FORMAT = "samantha-bundle/2"
MAX_FILE_BYTES = 64 * 1024 * 1024
# the hashing model-signing records in the signature; a verifier must hash the same way
# tuf/: update metadata carried with the bundle, verified by TUF (cube/tuf_meta.py), added after signing
TUF_DIR = "tuf"
_IGNORED = [SIGNATURE, TUF_DIR]

RejectKind = Literal["malformed", "unknown_key", "bad_signature", "tampered", "expired", "quarantined"]


class BundleError(ValueError):
    """A bundle that must not be loaded. `kind` is machine-readable; the message says why."""

    def __init__(self, kind: RejectKind, message: str):
        self.kind = kind
        super().__init__(f"{kind}: {message}")


class Manifest(BaseModel):
    """The bundle's metadata file (`bundle.json`), one of the signed files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["samantha-bundle/2"] = FORMAT
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    version: str = Field(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
    created_at: datetime
    expires_at: datetime
    fault_profile: FaultProfile | None = None
    # set by this module from the signature, never read from the file
    _bundle_id: str = PrivateAttr("")
    _key_id: str | None = PrivateAttr(None)

    @field_validator("created_at", "expires_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("must carry a timezone (e.g. 2030-01-01T00:00:00Z)")
        return v

    @property
    def bundle_id(self) -> str:
        return self._bundle_id

    @property
    def key_id(self) -> str | None:
        """The signer's key id, or None for an unsigned bundle."""
        return self._key_id

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def _with(self, bundle_id: str, key_id: str | None) -> Manifest:
        self._bundle_id, self._key_id = bundle_id, key_id
        return self


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


# -- keys -------------------------------------------------------------------------------------
def _pem(public: ec.EllipticCurvePublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_hint(public_pem: bytes) -> str:
    """model-signing's public-key hint: sha256 of the PEM SubjectPublicKeyInfo, hex."""
    return hashlib.sha256(public_pem).hexdigest()


@dataclass(frozen=True)
class SigningKey:
    """An EC P-256 private key in a PEM file (model-signing signs from a key file)."""

    path: Path

    @classmethod
    def generate(cls, path: str | Path) -> SigningKey:
        """Create a key at `path` (mode 0600) and its public key at `<path>.pub`."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        private = ec.generate_private_key(ec.SECP256R1())
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
        Path(f"{p}.pub").write_bytes(_pem(private.public_key()))
        return cls(p)

    @classmethod
    def load(cls, path: str | Path) -> SigningKey:
        p = Path(path)
        try:
            serialization.load_pem_private_key(p.read_bytes(), None)
        except OSError as e:
            raise BundleError("malformed", f"cannot read key {p}: {e.strerror or e}") from None
        except (ValueError, TypeError):
            raise BundleError("malformed", f"{p} is not a PEM private key (old ed25519 keys must be replaced: "
                                           f"`samantha keys new`)") from None
        return cls(p)

    @classmethod
    def load_or_create(cls, path: str | Path) -> SigningKey:
        return cls.load(path) if Path(path).exists() else cls.generate(path)

    @property
    def public_pem(self) -> bytes:
        private = serialization.load_pem_private_key(self.path.read_bytes(), None)
        return _pem(private.public_key())  # type: ignore[arg-type]

    @property
    def key_id(self) -> str:
        return key_hint(self.public_pem)[:16]


@dataclass(frozen=True)
class TrustedKey:
    path: Path  # the PEM public key file the model-signing verifier reads
    hint: str

    @property
    def key_id(self) -> str:
        return self.hint[:16]


def load_trusted_keys(path: str | Path) -> dict[str, TrustedKey]:
    """Trusted publisher keys by model-signing hint: a directory of PEM public keys (`*.pem`,
    `*.pub`), or one PEM file. A missing path is no keys (nothing is trusted)."""
    p = Path(path)
    files = sorted([*p.glob("*.pem"), *p.glob("*.pub")]) if p.is_dir() else [p] if p.is_file() else []
    keys: dict[str, TrustedKey] = {}
    for f in files:
        try:
            public = serialization.load_pem_public_key(f.read_bytes())
        except ValueError:
            raise BundleError("malformed", f"trusted key {f} is not a PEM public key") from None
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise BundleError("malformed", f"trusted key {f} is not an elliptic-curve key")
        hint = key_hint(_pem(public))
        keys[hint] = TrustedKey(f, hint)
    return keys


def trust_key(key: SigningKey, keys_dir: str | Path) -> Path:
    """Add a publisher's public key to a trusted-keys directory as `<key_id>.pem`."""
    d = Path(keys_dir)
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{key.key_id}.pem"
    p.write_bytes(key.public_pem)
    return p


# -- write and sign ---------------------------------------------------------------------------
def _hashing():
    from model_signing import hashing

    return hashing.Config().set_ignored_paths(paths=_IGNORED)


def _subject_digest(model_manifest) -> str:
    """The in-toto subject digest model-signing signs: the bundle's content identity."""
    from model_signing._signing.signing import Payload

    return dict(Payload(model_manifest).statement.pb.subject[0].digest)["sha256"]


def write_bundle(directory: str | Path, files: dict[str, bytes], *, name: str, version: str,
                 profile: FaultProfile | None = None, ttl: timedelta = timedelta(days=30),
                 key: SigningKey | None = None, clock: Clock = REAL_CLOCK) -> Manifest:
    """Write `files` and `bundle.json` into `directory`; sign when `key` is given."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for fname in files:
        if fname in (META, SIGNATURE, TUF_DIR) or "/" in fname or fname.startswith("."):
            raise ValueError(f"file name {fname!r} must be a plain file name other than {META}, {SIGNATURE}")
    for fname, data in files.items():
        (d / fname).write_bytes(data)
    now = datetime.fromtimestamp(clock.time(), UTC).replace(microsecond=0)
    meta = Manifest(name=name, version=version, created_at=now, expires_at=now + ttl,
                    fault_profile=profile if profile and not profile.is_clean() else None)
    tmp = d / (META + ".tmp")
    tmp.write_text(json.dumps(meta.model_dump(mode="json", exclude_none=True), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, d / META)
    (d / SIGNATURE).unlink(missing_ok=True)
    return sign_bundle(d, key) if key else read_manifest(d)


def sign_bundle(directory: str | Path, key: SigningKey) -> Manifest:
    """(Re-)sign the directory with model-signing's elliptic-key signer, writing `model.sig`."""
    import model_signing

    d = Path(directory)
    meta = _read_meta(d)
    (d / SIGNATURE).unlink(missing_ok=True)
    model_signing.signing.Config().use_elliptic_key_signer(private_key=key.path).set_hashing_config(
        _hashing()).sign(d, d / SIGNATURE)
    return meta._with(_subject_digest(_hashing().hash(d)), key.key_id)


def read_manifest(directory: str | Path) -> Manifest:
    """The metadata and content id of a bundle, without checking its signature (for lookup only)."""
    d = Path(directory)
    return _read_meta(d)._with(_subject_digest(_hashing().hash(d)), None)


def json_object(path: str, raw: bytes) -> dict[str, Any]:
    """A bundle file that must be one JSON object; anything else is `malformed`, naming the file."""
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError("malformed", f"{path} is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise BundleError("malformed", f"{path} must be a JSON object")
    return doc


def _parse_meta(raw: bytes) -> Manifest:
    doc = json_object(META, raw)
    try:
        return Manifest.model_validate(doc)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise BundleError("malformed", f"{META} field {where}: {first['msg']}") from None


def _read_meta(d: Path) -> Manifest:
    if not d.is_dir():
        raise BundleError("malformed", f"{d} is not a bundle directory")
    p = d / META
    if not p.exists() and (d / OLD_MANIFEST).exists():
        raise BundleError("malformed", f"{d} is an old-format bundle (samantha-bundle/1, {OLD_MANIFEST}); "
                                       f"rebuild it with `samantha bundle build` and sign it with model-signing")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise BundleError("malformed", f"cannot read {p}: {e.strerror or e}") from None
    return _parse_meta(raw)


# -- verify -----------------------------------------------------------------------------------
def _read_files(d: Path, signed: dict[str, str], max_file_bytes: int) -> dict[str, bytes]:
    """Read every file once and hold the bytes to the signed digests: what is loaded is what was checked."""
    files: dict[str, bytes] = {}
    for name, digest in sorted(signed.items()):
        p = d / name
        try:
            if p.stat().st_size > max_file_bytes:
                raise BundleError("tampered", f"{name} is larger than {max_file_bytes} bytes")
            data = p.read_bytes()
        except OSError as e:
            raise BundleError("tampered", f"listed file {name} cannot be read: {e.strerror or e}") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise BundleError("tampered", f"{name} sha256 does not match the signed manifest")
        files[name] = data
    extra = sorted(str(p.relative_to(d)) for p in d.rglob("*")
                   if p.is_file() and str(p.relative_to(d)) not in (*signed, SIGNATURE)
                   and p.relative_to(d).parts[0] != TUF_DIR)
    if extra:
        raise BundleError("tampered", f"files not listed in the signed manifest: {', '.join(extra)}")
    return files


def verify_bundle(directory: str | Path, trusted: dict[str, TrustedKey], *, clock: Clock = REAL_CLOCK,
                  max_file_bytes: int = MAX_FILE_BYTES) -> VerifiedBundle:
    """Every check a Cube makes before loading; raises BundleError naming the first failure.

    Order: signature present and by a trusted key (model-signing verifier), files intact
    against the signed manifest, metadata well-formed, not expired. `max_file_bytes` bounds
    what is read into memory per file (a language model's weights need more than the default).
    """
    from model_signing._signing import sign_ec_key, sign_sigstore_pb

    d = Path(directory)
    _read_meta(d)  # an old-format or unreadable bundle is named as such before any signature talk
    sig_path = d / SIGNATURE
    if not sig_path.exists():
        raise BundleError("bad_signature", f"the bundle is not signed (no {SIGNATURE})")
    try:
        signature = sign_sigstore_pb.Signature.read(sig_path)
    except (ValueError, KeyError, TypeError, OSError) as e:
        raise BundleError("malformed", f"{SIGNATURE} is not a Sigstore bundle: {e}") from None
    pk = signature.bundle.verification_material.public_key
    hint = pk.hint if pk is not None else None
    if not hint or hint not in trusted:
        raise BundleError("unknown_key", f"unknown signing key {hint[:16] if hint else None!r}")
    key = trusted[hint]
    try:
        signed = sign_ec_key.Verifier(key.path).verify(signature)
    except Exception as e:  # cryptography's InvalidSignature, ValueError, a malformed payload
        raise BundleError("bad_signature", f"signature does not verify with key {key.key_id}: "
                                           f"{type(e).__name__} {e}".rstrip()) from None
    if signed.serialization_type.get("method") != "files":
        raise BundleError("malformed", "only file serialization is supported (not shards)")
    digests = {rd.identifier: rd.digest.digest_hex for rd in signed.resource_descriptors()
               if rd.digest.algorithm == "sha256"}
    if len(digests) != len(list(signed.resource_descriptors())):
        raise BundleError("malformed", "the signed manifest must use sha256 for every file")
    if META not in digests:
        raise BundleError("tampered", f"{META} is not covered by the signature")
    files = _read_files(d, digests, max_file_bytes)
    meta = _parse_meta(files.pop(META))._with(_subject_digest(signed), key.key_id)
    now = datetime.fromtimestamp(clock.time(), UTC)
    if now >= meta.expires_at:
        raise BundleError("expired", f"{meta.label} expired at {meta.expires_at.isoformat()}")
    return VerifiedBundle(path=d.resolve(), manifest=meta, key_id=key.key_id, files=files)


def place_files(vb: VerifiedBundle, target: Path) -> Path:
    """Write the verified bytes (never the disk's, which may have changed since) as `target/`, replacing what was
    there in one rename: a server started on `target` runs exactly what was signed."""
    target = Path(target)
    staging = target.with_name(f".{target.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    for fname, data in vb.files.items():
        p = staging / fname
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    staging.mkdir(parents=True, exist_ok=True)  # a bundle of bundle.json alone still places a directory
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target
