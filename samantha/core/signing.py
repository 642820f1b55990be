"""ed25519 keys, canonical JSON, and detached signatures.

One module for every signed thing (bundles, audit records, approval decisions,
policy modules), so there is exactly one canonical encoding to get right.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class SignatureError(ValueError):
    """A signature, key or signed document that must not be trusted; the message says why."""


def canonical_json(obj: Any) -> bytes:
    """Deterministic bytes: sorted keys, no whitespace, UTF-8. NaN/inf are refused."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, what: str = "value") -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as e:
        raise SignatureError(f"{what} is not valid base64") from e


@dataclass(frozen=True)
class PublicKey:
    key: Ed25519PublicKey

    @property
    def raw(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        """Short stable identifier: the first 16 hex digits of sha256(raw public key)."""
        return sha256_hex(self.raw)[:16]

    def to_b64(self) -> str:
        return b64(self.raw)

    @classmethod
    def from_b64(cls, text: str) -> PublicKey:
        raw = unb64(text, "public key")
        if len(raw) != 32:
            raise SignatureError(f"public key must be 32 bytes, got {len(raw)}")
        return cls(Ed25519PublicKey.from_public_bytes(raw))

    def verify(self, signature: bytes, message: bytes) -> None:
        try:
            self.key.verify(signature, message)
        except InvalidSignature:
            raise SignatureError("signature does not verify") from None


@dataclass(frozen=True)
class KeyPair:
    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> KeyPair:
        return cls(Ed25519PrivateKey.generate())

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.private.public_key())

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)

    def private_b64(self) -> str:
        return b64(self.private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                              serialization.NoEncryption()))

    @classmethod
    def from_private_b64(cls, text: str) -> KeyPair:
        raw = unb64(text, "private key")
        if len(raw) != 32:
            raise SignatureError(f"private key must be 32 bytes, got {len(raw)}")
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def save(self, path: str | Path) -> None:
        """Write the private key (base64, mode 0600) and `<path>.pub` beside it."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.private_b64() + "\n")
        Path(f"{p}.pub").write_text(self.public.to_b64() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> KeyPair:
        try:
            return cls.from_private_b64(Path(path).read_text().strip())
        except OSError as e:
            raise SignatureError(f"cannot read key {path}: {e.strerror}") from None

    @classmethod
    def load_or_create(cls, path: str | Path) -> KeyPair:
        return cls.load(path) if Path(path).exists() else _created(cls.generate(), path)


def _created(kp: KeyPair, path: str | Path) -> KeyPair:
    kp.save(path)
    return kp


def sign_document(doc: dict[str, Any], key: KeyPair, field: str = "signature") -> dict[str, Any]:
    """Return a copy of `doc` with `field` = {key_id, alg, sig} over the canonical doc without `field`."""
    body = {k: v for k, v in doc.items() if k != field}
    sig = key.sign(canonical_json(body))
    return {**body, field: {"alg": "ed25519", "key_id": key.public.key_id, "sig": b64(sig)}}


def verify_document(doc: dict[str, Any], trusted: dict[str, PublicKey], field: str = "signature") -> str:
    """Check `doc[field]` against the trusted keys (by key_id). Returns the signer's key_id."""
    sig = doc.get(field)
    if not isinstance(sig, dict):
        raise SignatureError(f"missing '{field}'")
    if sig.get("alg") != "ed25519":
        raise SignatureError(f"unsupported signature algorithm {sig.get('alg')!r}")
    key_id = sig.get("key_id")
    if not isinstance(key_id, str) or key_id not in trusted:
        raise SignatureError(f"unknown signing key {key_id!r}")
    body = {k: v for k, v in doc.items() if k != field}
    try:
        message = canonical_json(body)
    except (TypeError, ValueError) as e:
        raise SignatureError(f"document cannot be canonicalised: {e}") from None
    trusted[key_id].verify(unb64(str(sig.get("sig", "")), "signature"), message)
    return key_id


def load_public_keys(path: str | Path) -> dict[str, PublicKey]:
    """Trusted keys by key_id: a directory of `*.pub` files, or one file with a base64 key per line.
    A missing path is no keys (nothing is trusted)."""
    p = Path(path)
    if p.is_dir():
        texts = [f.read_text() for f in sorted(p.glob("*.pub"))]
    elif p.is_file():
        texts = [p.read_text()]
    else:
        return {}
    keys: dict[str, PublicKey] = {}
    for text in texts:
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                k = PublicKey.from_b64(line)
                keys[k.key_id] = k
    return keys


def trust_public_key(key: PublicKey, keys_dir: str | Path) -> Path:
    """Add a public key to a trusted-keys directory as `<key_id>.pub`."""
    d = Path(keys_dir)
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{key.key_id}.pub"
    p.write_text(key.to_b64() + "\n")
    return p
