"""The trusted-operators file: who may read, approve and administer this Cube.

One file (`api.operators_file`, `operators.yaml` under data_dir unless absolute) serves both the
API/console authentication (tokens) and the approval queue (signed decisions):

```yaml
operators:
  - name: alice
    role: approver              # viewer < approver < admin
    public_key: <base64 ed25519> # optional: verifies decisions alice signs with her own key (CLI)
    token_sha256: <hex>          # optional: sha256 of alice's API token (web console, HTTP API)
    expires_at: 1790000000       # optional epoch seconds: after it, neither her token nor her key is trusted
```

Only token hashes are stored: a leaked file grants nothing. `new_token()` mints a token and
`add_operator()` writes its hash (the token itself is shown once).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from enum import IntEnum
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from samantha.core.signing import PublicKey, SignatureError
from samantha.core.validated_yaml import load_model, load_model_file

RoleName = Literal["viewer", "approver", "admin"]
TOKEN_PREFIX = "sam_"


class Role(IntEnum):
    viewer = 1
    approver = 2
    admin = 3


def role_of(name: str) -> Role:
    return Role[name]


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class OperatorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    role: RoleName
    public_key: str | None = Field(None, description="base64 raw ed25519 public key")
    token_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    expires_at: float | None = Field(None, description="epoch seconds; the operator is refused after this")

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    @field_validator("public_key")
    @classmethod
    def _key(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                PublicKey.from_b64(v)
            except SignatureError as e:
                raise ValueError(str(e)) from None
        return v

    @property
    def level(self) -> Role:
        return role_of(self.role)


class OperatorsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    operators: list[OperatorSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> OperatorsFile:
        seen: set[str] = set()
        for field in ("name", "token_sha256"):
            seen.clear()
            for op in self.operators:
                v = getattr(op, field)
                if v is not None and v in seen:
                    raise ValueError(f"duplicate {field} {v if field == 'name' else v[:12] + '...'}")
                seen.add(v)
        return self

    def by_token(self, token: str) -> OperatorSpec | None:
        """Constant-time over every entry: timing says nothing about which hash is close."""
        digest = token_sha256(token)
        found = None
        for op in self.operators:
            if op.token_sha256 is not None and hmac.compare_digest(op.token_sha256, digest):
                found = op
        return found

    def by_name(self, name: str) -> OperatorSpec | None:
        return next((op for op in self.operators if op.name == name), None)

    def public_keys(self) -> dict[str, PublicKey]:
        """key_id -> key of operators who registered one (for CLI-signed decisions)."""
        out = {}
        for op in self.operators:
            if op.public_key:
                k = PublicKey.from_b64(op.public_key)
                out[k.key_id] = k
        return out


def load_operators(path: str | Path) -> OperatorsFile:
    """Missing file: nobody is trusted (the local CLI token still works). Bad file: DocumentError."""
    p = Path(path)
    if not p.exists():
        return OperatorsFile()
    return load_model_file(OperatorsFile, p, empty_ok=True)


def parse_operators(text: str, source: str = "operators.yaml") -> OperatorsFile:
    return load_model(OperatorsFile, text, source)


def add_operator(path: str | Path, name: str, role: RoleName, public_key: str | PublicKey | None = None,
                 expires_at: float | None = None, *, with_token: bool = True) -> str | None:
    """Add (or replace) `name`. With a token (default) returns it, fresh, stored only as its hash;
    `with_token=False` (a signing key only) keeps the token `name` already had."""
    p = Path(path)
    current = load_operators(p)
    old = current.by_name(name)
    token = new_token() if with_token else None
    key = public_key.to_b64() if isinstance(public_key, PublicKey) else public_key
    spec = OperatorSpec(name=name, role=role, public_key=key, expires_at=expires_at,
                        token_sha256=token_sha256(token) if token else (old.token_sha256 if old else None))
    ops = [o for o in current.operators if o.name != name] + [spec]
    doc = OperatorsFile(operators=ops)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(doc.model_dump(mode="json", exclude_none=True), sort_keys=False))
    os.chmod(tmp, 0o600)
    os.replace(tmp, p)
    return token
